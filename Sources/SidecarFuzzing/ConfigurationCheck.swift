import SidecarCore

/// The `sidecar.conf` parser (TOMLKit, then the sidecar's reader and validation): it returns a
/// configuration or throws a ``ConfigurationError`` (its typed `throws` guarantees no other
/// error), and never crashes. An error names the file it was given and, when it names a line,
/// a line the text has.
package enum ConfigurationCheck {
    static let target = "config"
    static let file = "fuzz.conf"

    package static func run(_ bytes: [UInt8]) throws(FuzzFailure) {
        let text = String(decoding: bytes, as: UTF8.self)
        do {
            _ = try SidecarConfiguration(toml: text, file: Self.file)
        } catch {
            let lines = bytes.count(where: { $0 == UInt8(ascii: "\n") }) + 1
            guard error.file == Self.file, !error.reason.isEmpty else {
                throw Self.failure("error \(error) names no reason or another file", bytes)
            }
            if let line = error.line, !(1...lines).contains(line) {
                throw Self.failure("error \(error) names line \(line) of \(lines)", bytes)
            }
        }
    }

    static func failure(_ message: String, _ input: [UInt8]) -> FuzzFailure {
        let text = String(decoding: input.prefix(600), as: UTF8.self)
        return FuzzFailure(Self.target, "\(message); text \(String(reflecting: text))")
    }
}
