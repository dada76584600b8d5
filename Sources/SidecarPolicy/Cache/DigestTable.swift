/// A hash table from digests to small integers (the caller's slots), for ``MemoryCacheStore``
/// and the feedback journal.
///
/// The keys are digests (SHA-256 for cache keys, a mixed request id for the journal), so their
/// bits are already uniform: the table hashes nothing, it takes the home bucket from the
/// digest's low bits (a cache key's second word). Open addressing with linear probing and
/// backward-shift deletion (no tombstones), at most half full, eight bytes a bucket: a lookup
/// usually reads one cache line, where a `Dictionary` of the same keys runs SipHash and reads
/// 32-byte keys from a table four times the size. The table keeps only 32 bits of each key; the
/// caller holds the full keys by reference and confirms each candidate (`matching`).
package struct DigestTable {
    /// 0: empty; else the tag (the low 32 bits of the key's second word) in the high half and
    /// the reference plus one in the low half.
    private var buckets: [UInt64]
    package private(set) var count = 0

    /// The largest reference the table can hold.
    package static let maxReference = Int(UInt32.max) - 1

    package init(minimumCapacity: Int = 0) {
        var capacity = 16
        while capacity < 2 * minimumCapacity { capacity *= 2 }
        self.buckets = [UInt64](repeating: 0, count: capacity)
    }

    @inline(__always) private static func tag(_ digest: UInt64) -> UInt64 {
        digest & 0xFFFF_FFFF
    }

    /// The reference stored for `key`: among the references whose keys share its tag, the one
    /// `matching` accepts (it compares the full key).
    @inline(__always) package func find(_ key: CacheKey, matching: (Int) -> Bool) -> Int? {
        self.find(digest: key.bytes.1, matching: matching)
    }

    package mutating func insert(_ key: CacheKey, reference: Int) {
        self.insert(digest: key.bytes.1, reference: reference)
    }

    package mutating func remove(_ key: CacheKey, reference: Int) {
        self.remove(digest: key.bytes.1, reference: reference)
    }

    /// The reference stored under `digest` (of which the table keeps the low 32 bits) that
    /// `matching` accepts.
    @inline(__always) package func find(digest: UInt64, matching: (Int) -> Bool) -> Int? {
        let tag = Self.tag(digest)
        let mask = self.buckets.count - 1
        var index = Int(truncatingIfNeeded: tag) & mask
        while true {
            let bucket = self.buckets[index]
            if bucket == 0 { return nil }
            if bucket >> 32 == tag {
                let reference = Int(truncatingIfNeeded: bucket & 0xFFFF_FFFF) - 1
                if matching(reference) { return reference }
            }
            index = (index + 1) & mask
        }
    }

    /// Adds `reference` (at most ``maxReference``) under `digest`; the caller has made sure its
    /// key is not in the table.
    package mutating func insert(digest: UInt64, reference: Int) {
        precondition(reference >= 0 && reference <= Self.maxReference, "reference out of range")
        if 2 * (self.count + 1) > self.buckets.count { self.grow() }
        self.place(Self.tag(digest) << 32 | UInt64(reference + 1))
        self.count += 1
    }

    /// Removes the bucket under `digest` that holds `reference` (nothing if there is none).
    package mutating func remove(digest: UInt64, reference: Int) {
        let tag = Self.tag(digest)
        let wanted = tag << 32 | UInt64(reference + 1)
        let mask = self.buckets.count - 1
        var index = Int(truncatingIfNeeded: tag) & mask
        while self.buckets[index] != wanted {
            if self.buckets[index] == 0 { return }
            index = (index + 1) & mask
        }
        self.vacate(index)
        self.count -= 1
    }

    /// Removes every reference `predicate` accepts.
    package mutating func removeAll(where predicate: (Int) -> Bool) {
        let kept = self.buckets.filter { $0 != 0 && !predicate(Int(truncatingIfNeeded: $0 & 0xFFFF_FFFF) - 1) }
        for index in self.buckets.indices { self.buckets[index] = 0 }
        for bucket in kept { self.place(bucket) }
        self.count = kept.count
    }

    private mutating func place(_ bucket: UInt64) {
        let mask = self.buckets.count - 1
        var index = Int(truncatingIfNeeded: bucket >> 32) & mask
        while self.buckets[index] != 0 { index = (index + 1) & mask }
        self.buckets[index] = bucket
    }

    /// Empties bucket `hole`, moving back the buckets after it that would no longer be found.
    private mutating func vacate(_ hole: Int) {
        let mask = self.buckets.count - 1
        var hole = hole
        var index = hole
        while true {
            index = (index + 1) & mask
            let bucket = self.buckets[index]
            if bucket == 0 { break }
            let home = Int(truncatingIfNeeded: bucket >> 32) & mask
            // The bucket may move to the hole unless its home lies cyclically in (hole, index].
            let staysPut = hole <= index ? (hole < home && home <= index) : (hole < home || home <= index)
            if !staysPut {
                self.buckets[hole] = bucket
                hole = index
            }
        }
        self.buckets[hole] = 0
    }

    private mutating func grow() {
        let old = self.buckets
        self.buckets = [UInt64](repeating: 0, count: old.count * 2)
        for bucket in old where bucket != 0 { self.place(bucket) }
    }
}
