import Foundation

/// Finds and reads `sidecar.conf`: an explicit path, else `./sidecar.conf`, else
/// `/etc/llm-sidecar/sidecar.conf`, else the embedded defaults.
public enum ConfigurationLoader {
    public static let searchPaths = ["sidecar.conf", "/etc/llm-sidecar/sidecar.conf"]

    /// The configuration and where it came from (a path, or `<embedded defaults>`).
    public static func load(path explicitPath: String?) throws(ConfigurationError) -> (SidecarConfiguration, String) {
        if let explicitPath {
            return (try self.read(explicitPath), explicitPath)
        }
        for path in self.searchPaths where FileManager.default.fileExists(atPath: path) {
            return (try self.read(path), path)
        }
        return (try SidecarConfiguration.embeddedDefaults(), "<embedded defaults>")
    }

    static func read(_ path: String) throws(ConfigurationError) -> SidecarConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(file: path, key: "", reason: "cannot read the file: \(error.localizedDescription)")
        }
        return try SidecarConfiguration(toml: text, file: path)
    }
}
