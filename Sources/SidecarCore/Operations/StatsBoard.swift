import Foundation
import Synchronization

/// What `/sidecar/stats` and the dashboard show that `/metrics` does not keep: per-minute
/// history (the last 24 hours), the routing split and the cache's results since start.
///
/// One lock per finished request, held for a few additions.
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
        var cache: [String: Int] = [:]
        var tiers: [String: Int] = [:]
        var routers: [String: Int] = [:]

        enum CodingKeys: String, CodingKey {
            case requests, errors, cache, tiers, routers
            case costUSD = "cost_usd"
            case savedUSD = "saved_usd"
        }
    }

    static let minutesKept = 24 * 60
    private struct State {
        var ring: [Minute]
        var totals = Totals()
    }

    private let state: Mutex<State>
    let started = Date()

    init() {
        self.state = Mutex(State(ring: Array(repeating: Minute(minute: -1), count: Self.minutesKept)))
    }

    /// One finished request: its cost (or what a cache hit saved), cache result, tier and router.
    func record(
        status: Int,
        costUSD: Double,
        savedUSD: Double,
        cache: String?,
        tier: Int?,
        router: String?,
        now: Date = Date()
    ) {
        let minute = Int64(now.timeIntervalSince1970 / 60)
        let hit = cache == "exact" || cache == "semantic"
        self.state.withLock { state in
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
            if let cache { state.totals.cache[cache, default: 0] += 1 }
            if let tier { state.totals.tiers[String(tier), default: 0] += 1 }
            if let router { state.totals.routers[router, default: 0] += 1 }
        }
    }

    /// The minutes of the last 24 hours that saw requests, oldest first, and the totals.
    func snapshot(now: Date = Date()) -> (history: [Minute], totals: Totals) {
        let oldest = Int64(now.timeIntervalSince1970 / 60) - Int64(Self.minutesKept) + 1
        return self.state.withLock { state in
            (state.ring.filter { $0.minute >= oldest }.sorted { $0.minute < $1.minute }, state.totals)
        }
    }
}
