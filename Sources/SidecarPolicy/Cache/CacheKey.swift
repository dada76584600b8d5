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
        var message: [UInt8] = []
        message.reserveCapacity(parts.reduce(0) { $0 + $1.count + 8 })
        for part in parts {
            withUnsafeBytes(of: UInt64(part.count).littleEndian) { message.append(contentsOf: $0) }
            message.append(contentsOf: part)
        }
        guard let digest = Self.sha256(message) else { return nil }
        self.init(digest: digest)
    }

    package init(digest: [UInt8]) {
        func word(_ offset: Int) -> UInt64 {
            var value: UInt64 = 0
            for index in offset..<(offset + 8) { value = value << 8 | UInt64(index < digest.count ? digest[index] : 0) }
            return value
        }
        self.bytes = (word(0), word(8), word(16), word(24))
    }

    /// SHA-256, fetched from libcrypto's provider once: `EVP_sha256()` would make OpenSSL 3 look
    /// the implementation up again on every digest, under its global locks.
    nonisolated(unsafe) private static let algorithm: OpaquePointer? = EVP_MD_fetch(nil, "SHA256", nil)

    /// SHA-256 of `message`.
    package static func sha256(_ message: [UInt8]) -> [UInt8]? {
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let ok = message.withUnsafeBytes { input in
            digest.withUnsafeMutableBufferPointer { output in
                EVP_Digest(input.baseAddress, input.count, output.baseAddress, &length, Self.algorithm, nil)
            }
        }
        return ok == 1 && length == 32 ? digest : nil
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
