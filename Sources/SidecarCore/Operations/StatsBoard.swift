import Foundation
import SidecarPolicy
import Synchronization

/// What `/sidecar/stats` and the dashboard show that `/metrics` does not keep: per-minute
/// history (the last 24 hours), the routing split and the cache's results since start.
///
/// One finished request adds to its thread's part (the event loops do not wait on one
/// another); a snapshot adds the parts up.
final class StatsBoard: Sendable {
    struct Minute: Sendable, Equatable, Encodable {
        var minute: Int64
        var requests = 0
        var costUSD = 0.0
        var savedUSD = 0.0
        var cacheHits = 0
        var errors = 0

        enum CodingKeys: String, CodingKey {
            case minute, requests, errors
            case costUSD = "cost_usd"
            case savedUSD = "saved_usd"
            case cacheHits = "cache_hits"
        }
    }

    struct Totals: Sendable, Encodable {
        var requests = 0
        var errors = 0
        var costUSD = 0.0
        var savedUSD = 0.0
        /// By cache result, tier index and router (counted in fixed slots, named when encoded).
        var cacheCounts = [Int](repeating: 0, count: StatsBoard.cacheResults.count)
        var tierCounts: [Int] = []
        var routerCounts = [Int](repeating: 0, count: ComplexityScore.Router.allCases.count)

        mutating func add(_ other: Totals) {
            self.requests += other.requests
            self.errors += other.errors
            self.costUSD += other.costUSD
            self.savedUSD += other.savedUSD
            for (index, count) in other.cacheCounts.enumerated() { self.cacheCounts[index] += count }
            while self.tierCounts.count < other.tierCounts.count { self.tierCounts.append(0) }
            for (index, count) in other.tierCounts.enumerated() { self.tierCounts[index] += count }
            for (index, count) in other.routerCounts.enumerated() { self.routerCounts[index] += count }
        }

        var cache: [String: Int] { Self.named(StatsBoard.cacheResults, self.cacheCounts) }
        var tiers: [String: Int] { Self.named(self.tierCounts.indices.map(String.init), self.tierCounts) }
        var routers: [String: Int] {
            Self.named(ComplexityScore.Router.allCases.map(\.rawValue), self.routerCounts)
        }

        private static func named(_ names: [String], _ counts: [Int]) -> [String: Int] {
            var named: [String: Int] = [:]
            for (name, count) in zip(names, counts) where count > 0 { named[name] = count }
            return named
        }

        enum CodingKeys: String, CodingKey {
            case requests, errors, cache, tiers, routers
            case costUSD = "cost_usd"
            case savedUSD = "saved_usd"
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(self.requests, forKey: .requests)
            try container.encode(self.errors, forKey: .errors)
            try container.encode(self.costUSD, forKey: .costUSD)
            try container.encode(self.savedUSD, forKey: .savedUSD)
            try container.encode(self.cache, forKey: .cache)
            try container.encode(self.tiers, forKey: .tiers)
            try container.encode(self.routers, forKey: .routers)
        }
    }

    static let cacheResults = ["exact", "semantic", "miss", "bypass"]
    /// The routers in their counting order (`allCases` makes a new array on every call).
    static let routers = ComplexityScore.Router.allCases

    static let minutesKept = 24 * 60
    private struct State {
        var ring: [Minute]
        var totals = Totals()
    }

    /// Per-thread parts (as ``ThreadShards``, whose generic body a caller in this module would
    /// run unspecialised: a metadata lookup per request).
    private final class Shard: Sendable {
        let state = Mutex(State(ring: Array(repeating: Minute(minute: -1), count: StatsBoard.minutesKept)))
    }
    private let shards = (0..<8).map { _ in Shard() }
    let started = Date()

    init() {}

    /// One finished request: its cost (or what a cache hit saved), cache result, tier and router.
    func record(
        status: Int,
        costUSD: Double,
        savedUSD: Double,
        cache: String?,
        tier: Int?,
        router: ComplexityScore.Router?,
        now: Date = Date()
    ) {
        let minute = Int64(now.timeIntervalSince1970 / 60)
        let cacheSlot = cache.flatMap { Self.cacheResults.firstIndex(of: $0) }
        let hit = cache == "exact" || cache == "semantic"
        self.shards[ThreadShardIndex.local(among: self.shards.count)].state.withLock { state in
            let slot = Int(minute % Int64(Self.minutesKept))
            if state.ring[slot].minute != minute { state.ring[slot] = Minute(minute: minute) }
            state.ring[slot].requests += 1
            state.ring[slot].costUSD += costUSD
            state.ring[slot].savedUSD += savedUSD
            if hit { state.ring[slot].cacheHits += 1 }
            if status >= 400 { state.ring[slot].errors += 1 }
            state.totals.requests += 1
            state.totals.costUSD += costUSD
            state.totals.savedUSD += savedUSD
            if status >= 400 { state.totals.errors += 1 }
            if let cacheSlot { state.totals.cacheCounts[cacheSlot] += 1 }
            if let tier, tier >= 0 {
                while state.totals.tierCounts.count <= tier { state.totals.tierCounts.append(0) }
                state.totals.tierCounts[tier] += 1
            }
            if let router, let slot = Self.routers.firstIndex(of: router) {
                state.totals.routerCounts[slot] += 1
            }
        }
    }

    /// The minutes of the last 24 hours that saw requests, oldest first, and the totals.
    func snapshot(now: Date = Date()) -> (history: [Minute], totals: Totals) {
        let oldest = Int64(now.timeIntervalSince1970 / 60) - Int64(Self.minutesKept) + 1
        var minutes: [Int64: Minute] = [:]
        var totals = Totals()
        for shard in self.shards {
            shard.state.withLock { state in
                totals.add(state.totals)
                for part in state.ring where part.minute >= oldest {
                    var minute = minutes[part.minute] ?? Minute(minute: part.minute)
                    minute.requests += part.requests
                    minute.costUSD += part.costUSD
                    minute.savedUSD += part.savedUSD
                    minute.cacheHits += part.cacheHits
                    minute.errors += part.errors
                    minutes[part.minute] = minute
                }
            }
        }
        return (minutes.values.sorted { $0.minute < $1.minute }, totals)
    }
}
