import Foundation
import TOMLKit

/// Reads typed values out of one TOML table, naming every problem by its dotted key path.
///
/// Unknown keys are errors: a typo in `sidecar.conf` must not silently fall back to a default.
struct TOMLTableReader {
    let table: TOMLTable
    /// Key path of this table, e.g. `upstreams[1]`; empty for the root.
    let path: String
    let locator: TOMLLineLocator
    private var allowedKeys: Set<String> = []

    init(table: TOMLTable, path: String, locator: TOMLLineLocator) {
        self.table = table
        self.path = path
        self.locator = locator
    }

    func keyPath(_ key: String) -> String {
        self.path.isEmpty ? key : "\(self.path).\(key)"
    }

    func error(_ key: String, _ reason: String) -> ConfigurationError {
        let keyPath = key.isEmpty ? self.path : self.keyPath(key)
        return ConfigurationError(
            file: self.locator.file,
            line: self.locator.line(of: keyPath),
            key: keyPath,
            reason: reason
        )
    }

    private mutating func value(_ key: String) -> (any TOMLValueConvertible)? {
        self.allowedKeys.insert(key)
        return self.table[key]
    }

    mutating func string(_ key: String, default fallback: String) throws(ConfigurationError) -> String {
        guard let value = self.value(key) else { return fallback }
        guard let string = value.string else { throw self.error(key, "expected a string, found \(value.type)") }
        return string
    }

    mutating func bool(_ key: String, default fallback: Bool) throws(ConfigurationError) -> Bool {
        guard let value = self.value(key) else { return fallback }
        guard let bool = value.bool else { throw self.error(key, "expected true or false, found \(value.type)") }
        return bool
    }

    mutating func int(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard let value = self.value(key) else { return fallback }
        guard let int = value.int else { throw self.error(key, "expected an integer, found \(value.type)") }
        guard range.contains(int) else {
            throw self.error(key, "must be between \(range.lowerBound) and \(range.upperBound), found \(int)")
        }
        return int
    }

    /// A number (integer or float), returned as its shortest decimal text so prices stay exact.
    mutating func decimal(_ key: String, default fallback: Decimal) throws(ConfigurationError) -> Decimal {
        guard let value = self.value(key) else { return fallback }
        let text: String
        if let int = value.int {
            text = String(int)
        } else if let double = value.double, double.isFinite {
            text = "\(double)"
        } else {
            throw self.error(key, "expected a number, found \(value.type)")
        }
        guard let decimal = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")), decimal >= 0 else {
            throw self.error(key, "must be a number >= 0, found \(text)")
        }
        return decimal
    }

    mutating func double(_ key: String) throws(ConfigurationError) -> Double? {
        guard let value = self.value(key) else { return nil }
        if let int = value.int { return Double(int) }
        guard let double = value.double else { throw self.error(key, "expected a number, found \(value.type)") }
        return double
    }

    /// An array of strings; `nil` when the key is absent.
    mutating func strings(_ key: String) throws(ConfigurationError) -> [String]? {
        guard let value = self.value(key) else { return nil }
        guard let array = value.array else {
            throw self.error(key, "expected an array of strings, found \(value.type)")
        }
        var strings: [String] = []
        for element in array {
            guard let string = element.string else {
                throw self.error(key, "expected an array of strings, found an element of type \(element.type)")
            }
            strings.append(string)
        }
        return strings
    }

    /// A duration given in milliseconds under `key`.
    mutating func milliseconds(
        _ key: String,
        default fallback: Duration,
        range: ClosedRange<Int>
    )
        throws(ConfigurationError) -> Duration
    {
        let defaultMilliseconds = Int(fallback / .milliseconds(1))
        return .milliseconds(try self.int(key, default: defaultMilliseconds, range: range))
    }

    mutating func table(_ key: String) throws(ConfigurationError) -> TOMLTableReader? {
        guard let value = self.value(key) else { return nil }
        guard let table = value.table else { throw self.error(key, "expected a table, found \(value.type)") }
        return TOMLTableReader(table: table, path: self.keyPath(key), locator: self.locator)
    }

    /// An array of tables, either `[[key]]` sections or an inline array of `{ ... }`.
    mutating func tables(_ key: String) throws(ConfigurationError) -> [TOMLTableReader] {
        guard let value = self.value(key) else { return [] }
        guard let array = value.array else { throw self.error(key, "expected an array of tables, found \(value.type)") }
        var readers: [TOMLTableReader] = []
        for (index, element) in array.enumerated() {
            let elementPath = "\(self.keyPath(key))[\(index)]"
            guard let table = element.table else {
                throw ConfigurationError(
                    file: self.locator.file,
                    line: self.locator.line(of: elementPath),
                    key: elementPath,
                    reason: "expected a table, found \(element.type)"
                )
            }
            readers.append(TOMLTableReader(table: table, path: elementPath, locator: self.locator))
        }
        return readers
    }

    /// Fails on the first key that no read asked for.
    func rejectUnknownKeys() throws(ConfigurationError) {
        for key in self.table.keys.sorted() where !self.allowedKeys.contains(key) {
            throw self.error(key, "unknown key")
        }
    }
}
