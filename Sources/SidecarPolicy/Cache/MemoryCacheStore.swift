import Synchronization

/// The in-memory answer store: least recently used first out, bounded by entries and by bytes,
/// entries dropped when their TTL has passed. Shared by every event loop: the keys are spread
/// over ``shardCount`` shards, each with its own lock and its own share of the bounds (so the
/// event loops rarely wait for each other; the order of eviction is per shard).
///
/// An entry can also be found by an alias (the digest of the request's raw bytes, so a
/// byte-identical repeat needs no canonical form): the alias's shard keeps which key it stands
/// for. Aliases cost no entry and no answer copy; they are forgotten with their entry (found
/// stale on use) or, oldest first, when a shard holds twice its share of entries in aliases.
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
    /// order touches no reference-counted value); `-1` is "none". One ``DigestTable`` finds both
    /// the entries (by slot) and the aliases (by index, with ``State/aliasFlag``).
    private struct State {
        static let aliasFlag = 1 << 31
        var table = DigestTable()
        var keys: [CacheKey] = []
        var answers: [StoredAnswer?] = []
        /// -1 for a free slot.
        var sizes: [Int] = []
        var expiries: [Int64] = []
        var newer: [Int] = []
        var older: [Int] = []
        var free: [Int] = []
        var newest = -1
        var oldest = -1
        var entries = 0
        var bytes = 0
        var evictions = 0
        /// Each alias and the key of the entry it names (which may be in another shard), a ring
        /// with its oldest at `oldestAlias`; one no longer in the table keeps its place until
        /// its turn comes.
        var aliasKeys: [CacheKey] = []
        var aliasTargets: [CacheKey] = []
        var oldestAlias = 0

        enum Found {
            case entry(Int)
            case alias(Int)
        }

        func find(_ key: CacheKey) -> Found? {
            let reference = self.table.find(key) { reference in
                reference & Self.aliasFlag == 0
                    ? self.keys[reference] == key : self.aliasKeys[reference & ~Self.aliasFlag] == key
            }
            guard let reference else { return nil }
            return reference & Self.aliasFlag == 0 ? .entry(reference) : .alias(reference & ~Self.aliasFlag)
        }

        /// Forgets what `key` names: its entry, or its alias.
        mutating func forget(_ key: CacheKey) {
            switch self.find(key) {
            case .entry(let slot)?: self.remove(slot)
            case .alias(let index)?: self.table.remove(key, reference: index | Self.aliasFlag)
            case nil: break
            }
        }

        /// Adds an alias; past `limit` aliases, each new one takes the place of the oldest.
        mutating func addAlias(_ alias: CacheKey, for key: CacheKey, limit: Int) {
            let limit = max(1, min(limit, Self.aliasFlag - 1))
            let index: Int
            if self.aliasKeys.count < limit {
                index = self.aliasKeys.count
                self.aliasKeys.append(alias)
                self.aliasTargets.append(key)
            } else {
                index = self.oldestAlias % limit
                self.table.remove(self.aliasKeys[index], reference: index | Self.aliasFlag)
                self.aliasKeys[index] = alias
                self.aliasTargets[index] = key
            }
            self.oldestAlias = (index + 1) % limit
            self.table.insert(alias, reference: index | Self.aliasFlag)
        }

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

        /// Adds an entry (in a free slot when there is one), the most recently used.
        mutating func add(_ key: CacheKey, _ answer: StoredAnswer, size: Int) {
            let slot: Int
            if let free = self.free.popLast() {
                slot = free
                self.keys[slot] = key
                self.answers[slot] = answer
                self.sizes[slot] = size
                self.expiries[slot] = answer.expiresAt
            } else {
                slot = self.keys.count
                self.keys.append(key)
                self.answers.append(answer)
                self.sizes.append(size)
                self.expiries.append(answer.expiresAt)
                self.newer.append(-1)
                self.older.append(-1)
            }
            self.table.insert(key, reference: slot)
            self.entries += 1
            self.bytes += size
            self.pushNewest(slot)
        }

        mutating func remove(_ slot: Int) {
            // Not `answers[slot] != nil`: that is `StoredAnswer?`'s `==`, which copies the answer
            // (about 1 us a store, in the profile). A free slot's size is -1.
            guard self.sizes[slot] >= 0 else { return }
            self.unlink(slot)
            self.table.remove(self.keys[slot], reference: slot)
            self.entries -= 1
            self.bytes -= self.sizes[slot]
            self.answers[slot] = nil
            self.sizes[slot] = -1
            self.free.append(slot)
        }

        /// The live answer in `slot`, made the most recently used; an expired one is dropped.
        mutating func use(_ slot: Int, now: Int64) -> StoredAnswer? {
            guard self.sizes[slot] >= 0 else { return nil }
            guard self.expiries[slot] > now else {
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
            switch state.find(key) {
            case .entry(let slot)?: return state.use(slot, now: now).map(Found.answer) ?? .none
            case .alias(let index)?: return .alias(state.aliasTargets[index])
            case nil: return .none
            }
        }
        switch found {
        case .answer(let answer): return answer
        case .none: return nil
        case .alias(let target):
            let answer = self.shard(target).state.withLock { state -> StoredAnswer? in
                guard case .entry(let slot)? = state.find(target) else { return nil }
                return state.use(slot, now: now)
            }
            if answer == nil {
                shard.state.withLock { state in
                    if case .alias(let index)? = state.find(key), state.aliasTargets[index] == target {
                        state.table.remove(key, reference: index | State.aliasFlag)
                    }
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
            state.forget(key)
            state.add(key, answer, size: size)
            while state.entries > self.limits.maxEntries || state.bytes > self.limits.maxBytes, state.oldest >= 0 {
                state.remove(state.oldest)
                state.evictions += 1
            }
        }
        if let alias { self.addAlias(alias, for: key) }
    }

    /// Makes the entry stored under `key` findable by `alias` too.
    package func addAlias(_ alias: CacheKey, for key: CacheKey) {
        guard alias != key, self.limits.maxEntries > 0 else { return }
        self.shard(alias).state.withLock { state in
            state.forget(alias)
            state.addAlias(alias, for: key, limit: 2 * self.limits.maxEntries)
        }
    }

    package var count: Int { self.shards.reduce(0) { $0 + $1.state.withLock { $0.entries } } }
    package var bytes: Int { self.shards.reduce(0) { $0 + $1.state.withLock { $0.bytes } } }
    package var evictions: Int { self.shards.reduce(0) { $0 + $1.state.withLock { $0.evictions } } }
}
