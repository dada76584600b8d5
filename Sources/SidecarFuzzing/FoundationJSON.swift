import Foundation

/// Foundation's `JSONSerialization` as the fuzz targets' reference reader: what it parses is
/// valid JSON, and its trees are compared by meaning.
///
/// Its trees are `[String: Any]` dictionaries, so a repeated key keeps its last value (as most
/// upstream servers read it) and two keys that are canonically equivalent Unicode but spelled
/// differently become one key: checks that compare trees skip documents with non-ASCII keys
/// (``hasNonASCIIKey(_:)``) where that matters.
package enum FoundationJSON {
    /// The top-level object, or `nil` when Foundation rejects the bytes or they are not an object.
    package static func object(_ bytes: [UInt8]) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }

    /// Equal by meaning: objects by key (whatever the order), arrays element by element, strings
    /// scalar by scalar, numbers by `Double` value (`1`, `1.0` and `1e0` are equal), booleans
    /// apart from numbers.
    package static func equal(_ a: Any, _ b: Any) -> Bool {
        switch (a, b) {
        case (let a as [String: Any], let b as [String: Any]):
            guard a.count == b.count else { return false }
            for (key, value) in a {
                guard let other = b[key], self.equal(value, other) else { return false }
            }
            return true
        case (let a as [Any], let b as [Any]):
            return a.count == b.count && zip(a, b).allSatisfy { self.equal($0, $1) }
        case (let a as String, let b as String):
            return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case (is NSNull, is NSNull):
            return true
        default:
            guard let a = Scalar(a), let b = Scalar(b) else { return false }
            return a == b
        }
    }

    /// A boolean or a number, from `JSONSerialization`'s `NSNumber`s or Swift's own values.
    private enum Scalar: Equatable {
        case bool(Bool)
        case number(Double)

        init?(_ value: Any) {
            // Exact Swift types first: an `NSNumber` also casts to `Bool` and `Double`.
            if type(of: value) == Bool.self, let flag = value as? Bool {
                self = .bool(flag)
            } else if type(of: value) == Int.self, let integer = value as? Int {
                self = .number(Double(integer))
            } else if type(of: value) == Double.self, let double = value as? Double {
                self = .number(double)
            } else if let number = value as? NSNumber {
                if FoundationJSON.isBoolean(number) {
                    self = .bool(number.boolValue)
                } else if let double = FoundationJSON.number(number) {
                    self = .number(double)
                } else {
                    return nil
                }
            } else {
                return nil
            }
        }
    }

    /// A number's `Double` value (`nil` for anything else, booleans included). Integers too long
    /// for `Int64` come back as `NSDecimalNumber`s, read from their exact digits.
    package static func number(_ value: Any) -> Double? {
        guard let number = value as? NSNumber, !self.isBoolean(number) else { return nil }
        if let decimal = number as? NSDecimalNumber { return Double(decimal.description) ?? decimal.doubleValue }
        return number.doubleValue
    }

    /// `true` and `false` come back as `NSNumber`s too; their `objCType` is `c`.
    package static func isBoolean(_ number: NSNumber) -> Bool {
        String(cString: number.objCType) == "c"
    }

    /// Whether any object key in the tree holds a non-ASCII character.
    package static func hasNonASCIIKey(_ value: Any) -> Bool {
        switch value {
        case let object as [String: Any]:
            return object.contains { key, value in !key.utf8.allSatisfy { $0 < 0x80 } || self.hasNonASCIIKey(value) }
        case let array as [Any]:
            return array.contains { self.hasNonASCIIKey($0) }
        default:
            return false
        }
    }

    /// Whether the bytes hold a raw (unescaped) U+FEFF. `JSONSerialization` drops one that starts a
    /// string, so `{"\u{FEFF}a":1,"a":2}` reads as one key; an escaped `\ufeff` is kept.
    package static func hasRawByteOrderMark(_ bytes: [UInt8]) -> Bool {
        let mark: [UInt8] = [0xEF, 0xBB, 0xBF]
        guard bytes.count >= mark.count else { return false }
        return (0...(bytes.count - mark.count)).contains { bytes[$0..<($0 + mark.count)].elementsEqual(mark) }
    }

    /// Nesting depth: 0 for a scalar, 1 for a flat object or array.
    package static func depth(_ value: Any) -> Int {
        switch value {
        case let object as [String: Any]:
            return 1 + (object.values.map { self.depth($0) }.max() ?? 0)
        case let array as [Any]:
            return 1 + (array.map { self.depth($0) }.max() ?? 0)
        default:
            return 0
        }
    }

    /// A short rendering of a tree for failure messages.
    package static func describe(_ value: Any) -> String {
        let text = String(describing: value)
        return text.count > 600 ? String(text.prefix(600)) + "..." : text
    }
}
