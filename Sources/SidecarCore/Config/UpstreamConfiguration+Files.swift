import Foundation
import SidecarHTTP

/// The files an `[[upstreams]]` entry names, read once when the configuration loads: its CA
/// bundle (`ca_file`) and its key (`api_key_file`). A file that cannot be used fails the load.
extension UpstreamConfiguration {
    /// The largest key file read (keys are a few hundred bytes).
    static let maxKeyFileBytes = 16 * 1024

    /// Reads `ca_file` and `api_key_file` when set, naming `reader`'s keys in errors.
    mutating func loadFiles(
        _ reader: TOMLTableReader,
        environment: [String: String]
    ) throws(ConfigurationError) {
        if !self.caFile.isEmpty {
            let bytes: [UInt8]
            do {
                bytes = try Self.read(self.caFile, limit: 16 << 20)
            } catch {
                throw reader.error("ca_file", "cannot read \"\(self.caFile)\": \(error)")
            }
            do {
                self.trust = try UpstreamTrust(pem: bytes, source: self.caFile)
            } catch {
                throw reader.error("ca_file", "\"\(self.caFile)\" \(error)")
            }
        }
        if !self.apiKeyFile.isEmpty {
            if !self.apiKeyEnv.isEmpty {
                throw reader.error("api_key_file", "give either api_key_env or api_key_file, not both")
            }
            let path = Self.keyFilePath(self.apiKeyFile, environment: environment)
            let bytes: [UInt8]
            do {
                bytes = try Self.read(path, limit: Self.maxKeyFileBytes)
            } catch {
                throw reader.error("api_key_file", "cannot read \"\(path)\": \(error)")
            }
            // Never quote the file's contents: they are the key.
            switch Self.key(fromFile: bytes) {
            case .success(let key): self.apiKeyFromFile = key
            case .failure(let problem): throw reader.error("api_key_file", "\"\(path)\" \(problem.reason)")
            }
        }
    }

    /// `api_key_file` as a path: relative paths are under `$CREDENTIALS_DIRECTORY` when systemd
    /// sets it (`LoadCredential=`), else under the working directory.
    static func keyFilePath(_ path: String, environment: [String: String]) -> String {
        guard !path.hasPrefix("/"), let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty else {
            return path
        }
        return URL(fileURLWithPath: directory).appendingPathComponent(path).path
    }

    struct KeyFileProblem: Error {
        var reason: String
    }

    /// A key file's text without its trailing line break(s): one line of visible ASCII.
    static func key(fromFile bytes: [UInt8]) -> Result<SecretValue, KeyFileProblem> {
        var end = bytes.endIndex
        while end > bytes.startIndex, bytes[end - 1] == UInt8(ascii: "\n") || bytes[end - 1] == UInt8(ascii: "\r") {
            end -= 1
        }
        let key = bytes[..<end]
        guard !key.isEmpty else { return .failure(KeyFileProblem(reason: "is empty")) }
        guard key.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            return .failure(
                KeyFileProblem(
                    reason: "must hold the key alone, on one line of visible ASCII characters (no spaces, "
                        + "no line breaks inside)"
                )
            )
        }
        return .success(SecretValue(String(decoding: key, as: UTF8.self)))
    }

    struct ReadError: Error, CustomStringConvertible {
        var description: String
    }

    private static func read(_ path: String, limit: Int) throws(ReadError) -> [UInt8] {
        // Foundation's own messages say little ("The operation could not be completed"): name the
        // usual reasons first.
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ReadError(description: "no such file")
        }
        guard !isDirectory.boolValue else { throw ReadError(description: "it is a directory") }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw ReadError(description: "permission denied")
        }
        let data: Data
        do {
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            data = try handle.read(upToCount: limit + 1) ?? Data()
        } catch {
            throw ReadError(description: error.localizedDescription)
        }
        guard data.count <= limit else { throw ReadError(description: "larger than \(limit) bytes") }
        return Array(data)
    }
}
