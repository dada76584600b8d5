/// 128-bit request ids (32 hex digits) from a wyrand generator seeded once from the system's
/// random source: one seed per connection instead of a `getrandom` call per request. Ids only
/// need to be unique, not secret.
package struct RequestIDGenerator {
    private var state: UInt64

    package init() {
        self.state = UInt64.random(in: .min ... .max)
    }

    private mutating func next64() -> UInt64 {
        self.state &+= 0xA076_1D64_78BD_642F
        let product = self.state.multipliedFullWidth(by: self.state ^ 0xE703_7ED1_A0B4_28DB)
        return product.high ^ product.low
    }

    package mutating func next() -> String {
        let high = self.next64()
        let low = self.next64()
        return String(unsafeUninitializedCapacity: 32) { buffer in
            for index in 0..<16 {
                buffer[index] = Self.hexDigit(high >> UInt64(60 - 4 * index))
                buffer[16 + index] = Self.hexDigit(low >> UInt64(60 - 4 * index))
            }
            return 32
        }
    }

    /// A client's `X-Request-Id` when it is a sane token (printable ASCII, at most 128 bytes).
    package static func clientProvided(_ given: String?) -> String? {
        guard let given, !given.isEmpty, given.utf8.count <= 128, given.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return nil }
        return given
    }

    /// The low four bits as a lower-case hex digit.
    private static func hexDigit(_ value: UInt64) -> UInt8 {
        let nibble = UInt8(truncatingIfNeeded: value & 0xF)
        return nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
