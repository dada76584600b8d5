import Testing

@testable import SidecarPolicy

@Suite struct DigestTableTests {
    /// Random inserts and removals against a `Dictionary`, with keys whose tags come from a
    /// small set (so many share a home bucket and probe runs wrap around the table's end), the
    /// table growing from its smallest size and shrinking back to empty.
    @Test(arguments: [1, 7, 1_000, 1 << 32 - 1])
    func findsExactlyWhatADictionaryFinds(tagSpread: UInt64) {
        var random = SplitMix64(seed: tagSpread)  // seeded: a failure replays
        var table = DigestTable()
        var model: [CacheKey: Int] = [:]
        var keys: [Int: CacheKey] = [:]  // reference to key, as a store keeps them
        var nextReference = 0
        func key() -> CacheKey {
            // High tag bits set too, so the home bucket wraps near the end of the table.
            let tag = (random.next() % tagSpread) | (random.next() % 2 == 0 ? 0 : 0xFFFF_FFF0)
            return CacheKey(bytes: (random.next(), (random.next() << 32) | (tag & 0xFFFF_FFFF), 0, random.next()))
        }
        func find(_ key: CacheKey) -> Int? { table.find(key) { keys[$0] == key } }
        for step in 0..<6_000 {
            let removing = step >= 4_000 || (random.next() % 3 == 0 && !model.isEmpty)
            if removing, let victim = model.randomElement(using: &random) {
                table.remove(victim.key, reference: victim.value)
                model[victim.key] = nil
                keys[victim.value] = nil
            } else if !removing {
                let new = key()
                table.insert(new, reference: nextReference)
                model[new] = nextReference
                keys[nextReference] = new
                nextReference += 1
            }
            #expect(table.count == model.count)
            if step % 97 == 0 {
                for (key, reference) in model { #expect(find(key) == reference) }
                #expect(find(key()) == nil)
            }
        }
        #expect(table.count == 0)
    }

    @Test func removeAllKeepsWhatThePredicateRefuses() {
        var table = DigestTable()
        let keys = (0..<500).map { CacheKey(bytes: (UInt64($0), UInt64($0 % 7), 0, 0)) }
        for (reference, key) in keys.enumerated() { table.insert(key, reference: reference) }
        table.removeAll { $0 % 2 == 1 }
        #expect(table.count == 250)
        for (reference, key) in keys.enumerated() {
            let found = table.find(key) { keys[$0] == key }
            #expect(found == (reference % 2 == 0 ? reference : nil))
        }
        // Removing a reference the table does not hold changes nothing.
        table.remove(keys[1], reference: 1)
        #expect(table.count == 250)
    }
}

extension MemoryCacheStoreTests {
    /// A full sixteen-shard store under steady churn: the newest entries and their aliases are
    /// found, the evicted ones and theirs are not, and the entry bound holds throughout.
    @Test func aFullStoreKeepsTheNewestEntriesAndTheirAliases() {
        let store = MemoryCacheStore(limits: .init(maxEntries: 2_048, maxBytes: 1 << 30))
        var random = SplitMix64(seed: 42)
        var keys: [(key: CacheKey, alias: CacheKey)] = []
        func digest() -> CacheKey { CacheKey(bytes: (random.next(), random.next(), random.next(), random.next())) }
        for n in 0..<20_000 {
            let pair = (key: digest(), alias: digest())
            keys.append(pair)
            store.set(pair.key, alias: pair.alias, answer("answer \(n)"))
            #expect(store.count <= 2_048)
        }
        // Each shard keeps its newest 128; the last 1,000 overall are surely among them.
        for (n, pair) in keys.enumerated().suffix(1_000) {
            #expect(store.get(pair.key, now: 0)?.body == .whole(Array("answer \(n)".utf8)))
            #expect(store.get(pair.alias, now: 0)?.body == .whole(Array("answer \(n)".utf8)))
        }
        for pair in keys.prefix(10_000) {
            #expect(store.get(pair.key, now: 0) == nil)
            #expect(store.get(pair.alias, now: 0) == nil)
        }
        #expect(store.count > 1_900)
    }
}
