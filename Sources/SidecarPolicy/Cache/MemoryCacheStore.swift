import Synchronization

/// The in-memory answer store: least recently used first out, bounded by entries and by bytes,
/// entries dropped when their TTL has passed. Shared by every event loop: the keys are spread
/// over ``shardCount`` shards, each with its own lock and its own share of the bounds (so the
/// event loops rarely wait for each other; the order of eviction is per shard).
///
/// An entry can also be found by an alias (the digest of the request's raw bytes, so a
/// byte-identical repeat needs no canonical form): the alias's shard keeps which key it stands
/// for. Aliases cost no entry and no answer copy; they are forgotten with their entry (found
/// stale on use) or all at once when a shard holds twice its share of entries in aliases.
package final class MemoryCacheStore: Sendable {
    package struct Limits: Sendable, Equatable {
        package var maxEntries: Int
        package var maxBytes: Int

        package init(maxEntries: Int, maxBytes: Int) {
            self.maxEntries = maxEntries
            self.maxBytes = maxBytes
        }
    }

    /// The entries, in parallel arrays by slot (the links apart from the answers, so keeping the
    /// order touches no reference-counted value); `-1` is "none".
    private struct State {
        var slots: [CacheKey: Int] = [:]
        var keys: [CacheKey] = []
        var answers: [StoredAnswer?] = []
        var sizes: [Int] = []
        var newer: [Int] = []
        var older: [Int] = []
        var free: [Int] = []
        var newest = -1
        var oldest = -1
        var bytes = 0
        var evictions = 0
        /// Alias to the key of the entry it names (which may be in another shard).
        var aliases: [CacheKey: CacheKey] = [:]

        mutating func unlink(_ slot: Int) {
            let newer = self.newer[slot]
            let older = self.older[slot]
            if newer >= 0 { self.older[newer] = older } else { self.newest = older }
            if older >= 0 { self.newer[older] = newer } else { self.oldest = newer }
            self.newer[slot] = -1
            self.older[slot] = -1
        }

        mutating func pushNewest(_ slot: Int) {
            self.older[slot] = self.newest
            self.newer[slot] = -1
            if self.newest >= 0 { self.newer[self.newest] = slot }
            self.newest = slot
            if self.oldest < 0 { self.oldest = slot }
        }

        /// A new entry's slot (a free one when there is one).
        mutating func add(_ key: CacheKey, _ answer: StoredAnswer, size: Int) -> Int {
            if let slot = self.free.popLast() {
                self.keys[slot] = key
                self.answers[slot] = answer
                self.sizes[slot] = size
                return slot
            }
            self.keys.append(key)
            self.answers.append(answer)
            self.sizes.append(size)
            self.newer.append(-1)
            self.older.append(-1)
            return self.keys.count - 1
        }

        mutating func remove(_ slot: Int) {
            guard self.answers[slot] != nil else { return }
            self.unlink(slot)
            self.slots[self.keys[slot]] = nil
            self.bytes -= self.sizes[slot]
            self.answers[slot] = nil
            self.free.append(slot)
        }

        /// The live answer in `slot`, made the most recently used; an expired one is dropped.
        mutating func use(_ slot: Int, now: Int64) -> StoredAnswer? {
            guard let expiresAt = self.answers[slot]?.expiresAt else { return nil }
            guard expiresAt > now else {
                self.remove(slot)
                return nil
            }
            self.unlink(slot)
            self.pushNewest(slot)
            return self.answers[slot]
        }
    }

    package static let shardCount = 16
    private let limits: Limits
    private let shards: [Shard]

    private final class Shard: Sendable {
        let state = Mutex(State())
    }

    package init(limits: Limits) {
        // Small stores (tests, tiny configurations) keep one shard, so their bounds are exact.
        let count = limits.maxEntries >= 1_024 ? Self.shardCount : 1
        self.limits = Limits(maxEntries: limits.maxEntries / count, maxBytes: limits.maxBytes / count)
        self.shards = (0..<count).map { _ in Shard() }
    }

    private func shard(_ key: CacheKey) -> Shard {
        self.shards[Int(key.bytes.3 % UInt64(self.shards.count))]
    }

    private enum Found {
        case answer(StoredAnswer)
        case alias(CacheKey)
        case none
    }

    /// The answer stored under `key`, or under the key `key` is an alias of, unless it has
    /// expired (then it is dropped).
    package func get(_ key: CacheKey, now: Int64) -> StoredAnswer? {
        let shard = self.shard(key)
        let found: Found = shard.state.withLock { state in
            if let slot = state.slots[key] { return state.use(slot, now: now).map(Found.answer) ?? .none }
            return state.aliases[key].map(Found.alias) ?? .none
        }
        switch found {
        case .answer(let answer): return answer
        case .none: return nil
        case .alias(let target):
            let answer = self.shard(target).state.withLock { state in
                state.slots[target].flatMap { state.use($0, now: now) }
            }
            if answer == nil {
                shard.state.withLock { state in
                    if state.aliases[key] == target { state.aliases[key] = nil }
                }
            }
            return answer
        }
    }

    /// Stores `answer` (replacing an entry with the same key), then evicts the least recently
    /// used entries until both limits hold; with `alias`, the entry is found by that key too.
    /// An answer larger than the byte limit is not kept.
    package func set(_ key: CacheKey, alias: CacheKey? = nil, _ answer: StoredAnswer) {
        let size = answer.size
        guard size <= self.limits.maxBytes, self.limits.maxEntries > 0 else { return }
        self.shard(key).state.withLock { state in
            if let slot = state.slots[key] { state.remove(slot) }
            state.aliases[key] = nil
            let slot = state.add(key, answer, size: size)
            state.slots[key] = slot
            state.bytes += size
            state.pushNewest(slot)
            while state.slots.count > self.limits.maxEntries || state.bytes > self.limits.maxBytes,
                state.oldest >= 0
            {
                state.remove(state.oldest)
                state.evictions += 1
            }
        }
        guard let alias, alias != key else { return }
        self.shard(alias).state.withLock { state in
            if let slot = state.slots[alias] { state.remove(slot) }
            if state.aliases.count >= 2 * self.limits.maxEntries { state.aliases.removeAll(keepingCapacity: true) }
            state.aliases[alias] = key
        }
    }

    package var count: Int { self.shards.reduce(0) { $0 + $1.state.withLock { $0.slots.count } } }
    package var bytes: Int { self.shards.reduce(0) { $0 + $1.state.withLock { $0.bytes } } }
    package var evictions: Int { self.shards.reduce(0) { $0 + $1.state.withLock { $0.evictions } } }
}
