/// A configuration problem, naming the file, the line (when known), the key and the reason.
///
/// `description` is the message users see, e.g.
/// `sidecar.conf:14: upstreams[1].base_url: must be an http:// or https:// URL`.
public struct ConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var key: String
    public var reason: String

    public init(file: String, line: Int? = nil, key: String, reason: String) {
        self.file = file
        self.line = line
        self.key = key
        self.reason = reason
    }

    public var description: String {
        let place = self.line.map { "\(self.file):\($0)" } ?? self.file
        return self.key.isEmpty ? "\(place): \(self.reason)" : "\(place): \(self.key): \(self.reason)"
    }
}
