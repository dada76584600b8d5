import Foundation

/// Finds and reads `sidecar.conf`: an explicit path, else `./sidecar.conf`, else
/// `/etc/llm-sidecar/sidecar.conf`, else the embedded defaults.
public enum ConfigurationLoader {
    public static let searchPaths = ["sidecar.conf", "/etc/llm-sidecar/sidecar.conf"]

    /// The configuration and where it came from (a path, or `<embedded defaults>`).
    ///
    /// - Parameter environment: for the files the configuration names (`api_key_file` under
    ///   `$CREDENTIALS_DIRECTORY`).
    public static func load(
        path explicitPath: String?,
        environment: [String: String] = [:]
    ) throws(ConfigurationError) -> (SidecarConfiguration, String) {
        if let explicitPath {
            return (try self.read(explicitPath, environment: environment), explicitPath)
        }
        for path in self.searchPaths where FileManager.default.fileExists(atPath: path) {
            return (try self.read(path, environment: environment), path)
        }
        return (try SidecarConfiguration.embeddedDefaults(), "<embedded defaults>")
    }

    static func read(_ path: String, environment: [String: String]) throws(ConfigurationError) -> SidecarConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(file: path, key: "", reason: "cannot read the file: \(error.localizedDescription)")
        }
        return try SidecarConfiguration(toml: text, file: path, environment: environment)
    }
}
