import CSidecarKernels
import Foundation

/// Counts which of a fixed set of ASCII terms occur in a byte string (lower-cased), in one pass.
///
/// Three sieves, each finer and dearer than the one before. A fingerprint of the four bytes
/// from each position, taken 32 positions at a time (`sidecar_fingerprint_block`), rules out
/// most positions: the terms are split into eight buckets, and a position stays only if each of
/// its four bytes is one a term of the same bucket has there (judged by the byte's two nibbles,
/// either case of a letter). A position that stays is tested against two small tables: one by a
/// hash of its first four bytes (for terms of four or more bytes) and one by a hash of its first
/// two (for shorter terms), both taken with every byte's 0x20 bit set. A hit there compares the
/// few terms with that prefix, lower-casing the text's bytes exactly, so the text needs no
/// lower-cased copy.
package struct TermMatcher: Sendable {
    /// A term: its bytes are `bytes[start..<(start + length)]`, and it counts for list `list`.
    fileprivate struct Term {
        /// The first eight bytes (little-endian, zero-padded) and the mask of the ones it has:
        /// one comparison settles most terms.
        var prefix: UInt64
        var mask: UInt64
        var start: Int
        var length: Int
        var list: Int
    }

    /// The terms of four or more bytes sharing one four-byte prefix (every 0x20 bit set):
    /// `terms[first..<end]`.
    fileprivate struct Bucket {
        var prefix: UInt32
        var first: Int
        var end: Int
    }

    /// Bits of the hash of a four-byte prefix, and of a two-byte prefix (after those in `filter`).
    private static let longBits = 13
    private static let shortBits = 11

    /// Longer terms first, grouped by bucket; then the terms shorter than four bytes.
    private let terms: [Term]
    private let bytes: [UInt8]
    /// Where the terms shorter than four bytes start in `terms`.
    private let shortStart: Int
    /// A byte per hash of a longer term's four-byte prefix, then a byte per hash of a shorter
    /// term's two-byte prefix: 1 if a term has it, else 0 (10 KiB; bytes, as testing one takes
    /// fewer instructions than testing a bit).
    private let filter: [UInt8]
    /// The buckets by hash of their prefix, open addressing (`prefix` 0 is an empty slot).
    private let buckets: [Bucket]
    /// The fingerprint tables `sidecar_fingerprint_block` reads (32 bytes per byte of a position).
    private let fingerprints: [UInt8]

    /// The bits in `filter` of a four-byte word with every 0x20 bit set: of its four-byte prefix
    /// (the product's top bits) and of its two-byte prefix (the top of the product's low half,
    /// which only the low half of the word sets). One multiplication serves both.
    @inline(__always) private static func bits(_ folded: UInt32) -> (long: Int, short: Int) {
        let product = folded &* 0x9E37_79B1
        return (
            Int(truncatingIfNeeded: product >> UInt32(32 - Self.longBits)),
            1 << Self.longBits + Int(truncatingIfNeeded: (product & 0xFFFF) >> UInt32(16 - Self.shortBits))
        )
    }

    /// - Parameter lists: up to four term lists, counted separately in one pass.
    package init(_ lists: [[String]]) {
        var longTerms: [UInt32: [(utf8: [UInt8], list: Int)]] = [:]
        var shortTerms: [(utf8: [UInt8], list: Int)] = []
        for (list, strings) in lists.prefix(4).enumerated() {
            for string in strings where !string.isEmpty {
                let utf8 = Array(string.utf8)
                if utf8.count >= 4 {
                    longTerms[UInt32(truncatingIfNeeded: Self.prefix(of: utf8)) | 0x2020_2020, default: []].append(
                        (utf8, list)
                    )
                } else {
                    shortTerms.append((utf8, list))
                }
            }
        }
        var terms: [Term] = []
        var bytes: [UInt8] = []
        func append(_ utf8: [UInt8], list: Int) {
            let mask: UInt64 = utf8.count >= 8 ? ~0 : (1 << UInt64(8 * utf8.count)) - 1
            let prefix = Self.prefix(of: utf8)
            terms.append(Term(prefix: prefix, mask: mask, start: bytes.count, length: utf8.count, list: list))
            bytes += utf8
        }
        var filter = [UInt8](repeating: 0, count: 1 << Self.longBits + 1 << Self.shortBits)
        func set(_ hash: Int) { filter[hash] = 1 }
        var slots = 16
        while slots < 2 * longTerms.count { slots *= 2 }
        var buckets = [Bucket](repeating: Bucket(prefix: 0, first: 0, end: 0), count: slots)
        for (prefix, group) in longTerms.sorted(by: { $0.key < $1.key }) {
            let first = terms.count
            for term in group { append(term.utf8, list: term.list) }
            set(Self.bits(prefix).long)
            var slot = Self.bits(prefix).long & (slots - 1)
            while buckets[slot].prefix != 0 { slot = (slot + 1) & (slots - 1) }
            buckets[slot] = Bucket(prefix: prefix, first: first, end: terms.count)
        }
        self.shortStart = terms.count
        for term in shortTerms {
            append(term.utf8, list: term.list)
            let first = UInt32(term.utf8[0] | 0x20)
            // A one-byte term matches whatever byte follows it.
            let seconds = term.utf8.count > 1 ? [UInt32(term.utf8[1] | 0x20)] : (0..<256).map { UInt32($0) | 0x20 }
            for second in seconds { set(Self.bits(first | second << 8).short) }
        }
        self.terms = terms
        self.bytes = bytes
        self.filter = filter
        self.buckets = buckets
        self.fingerprints = Self.fingerprints(lists.prefix(4).flatMap { $0 }.map { Array($0.utf8) })
    }

    /// The fingerprint tables for `terms`. Terms shorter than the fingerprint get a bucket of
    /// their own (they let any byte through past their end); the rest are sorted and cut into
    /// runs of about equal size, so that a bucket's terms share their first bytes and its
    /// tables stay sparse.
    static func fingerprints(_ terms: [[UInt8]]) -> [UInt8] {
        let width = Int(SIDECAR_FINGERPRINT_BYTES)
        let folded = terms.filter { !$0.isEmpty }.map { $0.map(Self.lowerCased) }
        let short = folded.filter { $0.count < width }
        let long = Set(folded.filter { $0.count >= width }.map { Array($0.prefix(width)) }).sorted {
            $0.lexicographicallyPrecedes($1)
        }
        let longBuckets = short.isEmpty ? 8 : 7
        var tables = [UInt8](repeating: 0, count: 32 * width)
        func add(_ term: [UInt8], bucket: Int) {
            let bit = UInt8(1) << UInt8(bucket)
            for offset in 0..<width {
                let base = 32 * offset
                guard offset < term.count else {
                    // Past a short term's end any byte will do.
                    for nibble in 0..<16 {
                        tables[base + nibble] |= bit
                        tables[base + 16 + nibble] |= bit
                    }
                    continue
                }
                let byte = term[offset]
                let isLetter = byte &- UInt8(ascii: "a") < 26
                for variant in isLetter ? [byte, byte & ~0x20] : [byte] {
                    tables[base + Int(variant & 15)] |= bit
                    tables[base + 16 + Int(variant >> 4)] |= bit
                }
            }
        }
        for (index, term) in long.enumerated() { add(term, bucket: index * longBuckets / max(long.count, 1)) }
        for term in short { add(term, bucket: 7) }
        return tables
    }

    /// The ASCII lower-casing of a byte.
    fileprivate static func lowerCased(_ byte: UInt8) -> UInt8 {
        byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
    }

    /// The first eight bytes of `utf8`, little-endian, zero-padded.
    private static func prefix(of utf8: [UInt8]) -> UInt64 {
        var prefix: UInt64 = 0
        for (offset, byte) in utf8.prefix(8).enumerated() { prefix |= UInt64(byte) << UInt64(8 * offset) }
        return prefix
    }

    /// How many different terms of each list occur in `text` (as byte substrings of its ASCII lower-casing).
    package func countDistinct(in text: [UInt8]) -> (Int, Int, Int, Int) {
        text.withUnsafeBufferPointer { text in self.countDistinct { $0.scan(text) } }
    }

    /// How many different terms of each list occur in the texts that `body` passes to `Scanner.scan`.
    ///
    /// Each text is matched on its own: a term that would span the end of one and the start of the
    /// next is not found (nor, if texts are joined by a byte no term holds, would it be).
    package func countDistinct(_ body: (inout Scanner) -> Void) -> (Int, Int, Int, Int) {
        self.terms.withUnsafeBufferPointer { terms in
            self.bytes.withUnsafeBufferPointer { bytes in
                self.filter.withUnsafeBufferPointer { filter in
                    self.buckets.withUnsafeBufferPointer { buckets in
                        self.fingerprints.withUnsafeBufferPointer { fingerprints in
                            withUnsafeTemporaryAllocation(of: Bool.self, capacity: terms.count) { found in
                                found.initialize(repeating: false)
                                var scanner = Scanner(
                                    terms: terms,
                                    bytes: bytes,
                                    shortStart: self.shortStart,
                                    filter: filter,
                                    buckets: buckets,
                                    fingerprints: fingerprints,
                                    found: found
                                )
                                body(&scanner)
                                return scanner.counts
                            }
                        }
                    }
                }
            }
        }
    }

    /// One count in progress: the matcher's tables and the terms found so far. Valid only inside
    /// the `countDistinct` call that made it.
    package struct Scanner {
        fileprivate let terms: UnsafeBufferPointer<Term>
        fileprivate let bytes: UnsafeBufferPointer<UInt8>
        fileprivate let shortStart: Int
        fileprivate let filter: UnsafeBufferPointer<UInt8>
        fileprivate let buckets: UnsafeBufferPointer<Bucket>
        fileprivate let fingerprints: UnsafeBufferPointer<UInt8>
        fileprivate let found: UnsafeMutableBufferPointer<Bool>
        fileprivate(set) var counts = (0, 0, 0, 0)

        /// Adds the terms that occur in `text` (lower-cased).
        package mutating func scan(_ text: UnsafeBufferPointer<UInt8>) {
            guard let base = text.baseAddress, let fingerprints = self.fingerprints.baseAddress else { return }
            var block = 0
            while block < text.count {
                var positions = sidecar_fingerprint_block(fingerprints, base, text.count, block)
                while positions != 0 {
                    let position = block &+ positions.trailingZeroBitCount
                    positions &= positions &- 1
                    // The four bytes at `position`, zero-padded.
                    var word: UInt32 = 0
                    if position + 4 <= text.count {
                        word = UInt32(
                            littleEndian: UnsafeRawPointer(base).loadUnaligned(
                                fromByteOffset: position,
                                as: UInt32.self
                            )
                        )
                    } else {
                        for offset in 0..<(text.count - position) {
                            word |= UInt32(text[position + offset]) << UInt32(8 * offset)
                        }
                    }
                    let hits = self.filterHits(word)
                    if hits.long | hits.short != 0 { self.compare(word, hits: hits, at: position, in: text) }
                }
                block &+= 64
            }
        }

        /// The bytes of `filter` for the (zero-padded) `word`'s four- and two-byte prefixes: zero
        /// (as for nearly every position) rules out every term there.
        @inline(__always) private func filterHits(_ word: UInt32) -> (long: UInt8, short: UInt8) {
            let (long, short) = TermMatcher.bits(word | 0x2020_2020)
            return (self.filter[long], self.filter[short])
        }

        /// Compares the terms with `word`'s four-byte prefix (if `hits.long`) and the terms shorter
        /// than four bytes (if `hits.short`) with the text at `position`.
        private mutating func compare(
            _ word: UInt32,
            hits: (long: UInt8, short: UInt8),
            at position: Int,
            in text: UnsafeBufferPointer<UInt8>
        ) {
            // The eight bytes at `position` (zero-padded), lower-cased.
            var bytes: UInt64 = 0
            if position + 8 <= text.count, let base = text.baseAddress {
                bytes = UInt64(
                    littleEndian: UnsafeRawPointer(base).loadUnaligned(fromByteOffset: position, as: UInt64.self)
                )
            } else {
                for offset in 0..<(text.count - position) {
                    bytes |= UInt64(text[position + offset]) << UInt64(8 * offset)
                }
            }
            let lower = Self.lowerCased(bytes)
            if hits.long != 0 {
                let folded = word | 0x2020_2020
                var slot = TermMatcher.bits(folded).long & (self.buckets.count - 1)
                while self.buckets[slot].prefix != 0 {
                    if self.buckets[slot].prefix == folded {
                        for index in self.buckets[slot].first..<self.buckets[slot].end {
                            self.compare(term: index, lower, at: position, in: text)
                        }
                        break
                    }
                    slot = (slot + 1) & (self.buckets.count - 1)
                }
            }
            if hits.short != 0 {
                for index in self.shortStart..<self.terms.count {
                    self.compare(term: index, lower, at: position, in: text)
                }
            }
        }

        /// Counts term `index` if it is new and at `position` (whose next eight bytes, lower-cased,
        /// are `lower`).
        @inline(__always) private mutating func compare(
            term index: Int,
            _ lower: UInt64,
            at position: Int,
            in text: UnsafeBufferPointer<UInt8>
        ) {
            let term = self.terms[index]
            guard !self.found[index], lower & term.mask == term.prefix, position + term.length <= text.count else {
                return
            }
            var offset = min(8, term.length)
            while offset < term.length, Self.lowerCased(text[position + offset]) == self.bytes[term.start + offset] {
                offset += 1
            }
            guard offset == term.length else { return }
            self.found[index] = true
            switch term.list {
            case 0: self.counts.0 += 1
            case 1: self.counts.1 += 1
            case 2: self.counts.2 += 1
            default: self.counts.3 += 1
            }
        }

        /// The ASCII lower-casing of a byte.
        private static func lowerCased(_ byte: UInt8) -> UInt8 { TermMatcher.lowerCased(byte) }

        /// The ASCII lower-casing of eight bytes.
        private static func lowerCased(_ bytes: UInt64) -> UInt64 {
            let ones: UInt64 = 0x0101_0101_0101_0101
            let low7 = bytes & (0x7F &* ones)
            // High bit of each byte: at least "A", not above "Z", and ASCII.
            let upper = (low7 &+ 0x3F &* ones) & ~(low7 &+ 0x25 &* ones) & ~bytes & (0x80 &* ones)
            return bytes | upper >> 2
        }
    }
}
