import CLibCrypto

/// A SHA-256 digest naming a cache entry (the exact key) or a group of entries that differ only
/// in their prompt (the semantic context). Computed with libcrypto.
package struct CacheKey: Hashable, Sendable, CustomStringConvertible {
    package var bytes: (UInt64, UInt64, UInt64, UInt64)

    package init(bytes: (UInt64, UInt64, UInt64, UInt64)) {
        self.bytes = bytes
    }

    /// SHA-256 over `parts`, each preceded by its length (so no two lists of parts collide);
    /// `nil` only if libcrypto fails.
    package init?(hashing parts: [[UInt8]]) {
        var hasher = Hasher256()
        for part in parts { part.withUnsafeBytes { hasher.update(part: $0) } }
        guard let key = hasher.finish() else { return nil }
        self = key
    }

    /// SHA-256 over parts given one at a time, each preceded by its length, as
    /// ``init(hashing:)`` hashes them (the same parts give the same key), without joining them.
    package struct Hasher256: ~Copyable {
        /// libcrypto's SHA-256 state, on the stack (no allocation per key).
        private var context = SHA256_CTX()
        private var failed = false

        package init() {
            self.failed = SHA256_Init(&self.context) != 1
        }

        package mutating func update(part: UnsafeRawBufferPointer) {
            var length = UInt64(part.count).littleEndian
            let ok = withUnsafeBytes(of: &length) { SHA256_Update(&self.context, $0.baseAddress, $0.count) }
            // An empty part is only its length (a null pointer is fine to libcrypto at length 0).
            let rest = part.isEmpty ? 1 : SHA256_Update(&self.context, part.baseAddress, part.count)
            if ok != 1 || rest != 1 { self.failed = true }
        }

        package mutating func update(part: [UInt8]) {
            part.withUnsafeBytes { self.update(part: $0) }
        }

        /// A string's UTF-8 bytes, as the part `Array(part.utf8)` would be.
        package mutating func update(part: String) {
            var part = part
            part.withUTF8 { self.update(part: UnsafeRawBufferPointer($0)) }
        }

        /// The key, or `nil` if libcrypto failed at any step.
        package consuming func finish() -> CacheKey? {
            var digest = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
            let ok = withUnsafeMutableBytes(of: &digest) { output in
                SHA256_Final(output.baseAddress?.assumingMemoryBound(to: UInt8.self), &self.context)
            }
            guard !self.failed, ok == 1 else { return nil }
            return CacheKey(
                bytes: (
                    UInt64(bigEndian: digest.0), UInt64(bigEndian: digest.1), UInt64(bigEndian: digest.2),
                    UInt64(bigEndian: digest.3)
                )
            )
        }
    }

    package init(digest: [UInt8]) {
        func word(_ offset: Int) -> UInt64 {
            var value: UInt64 = 0
            for index in offset..<(offset + 8) { value = value << 8 | UInt64(index < digest.count ? digest[index] : 0) }
            return value
        }
        self.bytes = (word(0), word(8), word(16), word(24))
    }

    /// SHA-256 of `message`.
    package static func sha256(_ message: [UInt8]) -> [UInt8]? {
        var digest = [UInt8](repeating: 0, count: 32)
        let made = message.withUnsafeBytes { input in
            digest.withUnsafeMutableBufferPointer { output in
                SHA256(input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count, output.baseAddress)
            }
        }
        return made == nil ? nil : digest
    }

    /// 64 lowercase hex digits.
    package var hex: String {
        let words = [self.bytes.0, self.bytes.1, self.bytes.2, self.bytes.3]
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for word in words {
            for shift in stride(from: 60, through: 0, by: -4) { out.append(digits[Int((word >> UInt64(shift)) & 15)]) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    package init?(hex: String) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 64 else { return nil }
        var digest: [UInt8] = []
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = Self.nibble(utf8[index]), let low = Self.nibble(utf8[index + 1]) else { return nil }
            digest.append(high << 4 | low)
        }
        self.init(digest: digest)
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        default: return nil
        }
    }

    package var description: String { String(self.hex.prefix(16)) }

    package static func == (lhs: CacheKey, rhs: CacheKey) -> Bool {
        lhs.bytes == rhs.bytes
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(self.bytes.0)
        hasher.combine(self.bytes.1)
    }
}
