import Synchronization

/// The in-memory answer store: least recently used first out, bounded by entries and by bytes,
/// entries dropped when their TTL has passed. Shared by every event loop: the keys are spread
/// over ``shardCount`` shards, each with its own lock and its own share of the bounds (so the
/// event loops rarely wait for each other; the order of eviction is per shard).
package final class MemoryCacheStore: Sendable {
    package struct Limits: Sendable, Equatable {
        package var maxEntries: Int
        package var maxBytes: Int

        package init(maxEntries: Int, maxBytes: Int) {
            self.maxEntries = maxEntries
            self.maxBytes = maxBytes
        }
    }

    private struct Node {
        var key: CacheKey
        var answer: StoredAnswer
        var size: Int
        var newer: Int?
        var older: Int?
    }

    private struct State {
        var slots: [CacheKey: Int] = [:]
        var nodes: [Node?] = []
        var free: [Int] = []
        var newest: Int?
        var oldest: Int?
        var bytes = 0
        var evictions = 0

        mutating func unlink(_ slot: Int) {
            guard let node = self.nodes[slot] else { return }
            if let newer = node.newer { self.nodes[newer]?.older = node.older } else { self.newest = node.older }
            if let older = node.older { self.nodes[older]?.newer = node.newer } else { self.oldest = node.newer }
            self.nodes[slot]?.newer = nil
            self.nodes[slot]?.older = nil
        }

        mutating func pushNewest(_ slot: Int) {
            self.nodes[slot]?.older = self.newest
            self.nodes[slot]?.newer = nil
            if let newest = self.newest { self.nodes[newest]?.newer = slot }
            self.newest = slot
            if self.oldest == nil { self.oldest = slot }
        }

        mutating func remove(_ slot: Int) {
            guard let node = self.nodes[slot] else { return }
            self.unlink(slot)
            self.slots[node.key] = nil
            self.bytes -= node.size
            self.nodes[slot] = nil
            self.free.append(slot)
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

    /// The answer stored under `key`, unless it has expired (then it is dropped).
    package func get(_ key: CacheKey, now: Int64) -> StoredAnswer? {
        self.shard(key).state.withLock { state in
            guard let slot = state.slots[key], let node = state.nodes[slot] else { return nil }
            guard node.answer.expiresAt > now else {
                state.remove(slot)
                return nil
            }
            state.unlink(slot)
            state.pushNewest(slot)
            return node.answer
        }
    }

    /// Stores `answer` (replacing an entry with the same key), then evicts the least recently
    /// used entries until both limits hold. An answer larger than the byte limit is not kept.
    package func set(_ key: CacheKey, _ answer: StoredAnswer) {
        let size = answer.size
        guard size <= self.limits.maxBytes, self.limits.maxEntries > 0 else { return }
        self.shard(key).state.withLock { state in
            if let slot = state.slots[key] { state.remove(slot) }
            let node = Node(key: key, answer: answer, size: size)
            let slot: Int
            if let reused = state.free.popLast() {
                slot = reused
                state.nodes[slot] = node
            } else {
                slot = state.nodes.count
                state.nodes.append(node)
            }
            state.slots[key] = slot
            state.bytes += size
            state.pushNewest(slot)
            while state.slots.count > self.limits.maxEntries || state.bytes > self.limits.maxBytes,
                let oldest = state.oldest
            {
                state.remove(oldest)
                state.evictions += 1
            }
        }
    }

    package func remove(_ key: CacheKey) {
        self.shard(key).state.withLock { state in
            if let slot = state.slots[key] { state.remove(slot) }
        }
    }

    package var count: Int { self.shards.reduce(0) { $0 + $1.state.withLock { $0.slots.count } } }
    package var bytes: Int { self.shards.reduce(0) { $0 + $1.state.withLock { $0.bytes } } }
    package var evictions: Int { self.shards.reduce(0) { $0 + $1.state.withLock { $0.evictions } } }
}
