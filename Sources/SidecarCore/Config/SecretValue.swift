/// A credential the configuration read from a file (`api_key_file`). Its text never shows when
/// the value is printed, interpolated, dumped or reflected: all of them say `<redacted>`.
public struct SecretValue: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// The credential itself; read only where it is sent.
    let value: String

    init(_ value: String) {
        self.value = value
    }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: []) }
}
