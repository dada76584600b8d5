extension String {
    /// ASCII case-insensitive equality with a lower-case literal.
    @inlinable
    package func caseInsensitiveEquals(_ lowercase: String) -> Bool {
        guard self.utf8.count == lowercase.utf8.count else { return false }
        // Header names are native (or small) strings: compare their UTF-8 in place.
        let inPlace = self.utf8.withContiguousStorageIfAvailable { bytes in
            lowercase.utf8.withContiguousStorageIfAvailable { expected in
                for index in 0..<bytes.count where !Self.asciiCaseInsensitiveEqual(bytes[index], expected[index]) {
                    return false
                }
                return true
            }
        }
        if let inPlace = inPlace ?? nil { return inPlace }
        return zip(self.utf8, lowercase.utf8).allSatisfy { Self.asciiCaseInsensitiveEqual($0, $1) }
    }

    /// `byte` equals the lower-case `expected`, ignoring ASCII case.
    @inlinable @inline(__always)
    package static func asciiCaseInsensitiveEqual(_ byte: UInt8, _ expected: UInt8) -> Bool {
        byte == expected || (byte &- UInt8(ascii: "A") < 26 && byte | 0x20 == expected)
    }
}
