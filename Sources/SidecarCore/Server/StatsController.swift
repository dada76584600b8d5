import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /sidecar/stats`: requests, spend and savings (today per app and model, and since
/// start), the cache's hit rate, the routing split, breaker states, the slowest models and the
/// last 24 hours by minute. `GET /sidecar/` is the dashboard that draws it.
enum StatsController {
    struct Stats: Encodable {
        struct Today: Encodable {
            var day: String
            var requests = 0
            var costUSD = 0.0
            var savedUSD = 0.0
            var cacheHits = 0
            var hitRate = 0.0

            enum CodingKeys: String, CodingKey {
                case day, requests
                case costUSD = "cost_usd"
                case savedUSD = "saved_usd"
                case cacheHits = "cache_hits"
                case hitRate = "hit_rate"
            }
        }

        struct App: Encodable {
            var app: String
            var costUSD: Double
            var savedUSD: Double
            var requests: Int
            var budgetUSD: Double?

            enum CodingKeys: String, CodingKey {
                case app, requests
                case costUSD = "cost_usd"
                case savedUSD = "saved_usd"
                case budgetUSD = "budget_usd"
            }
        }

        struct Model: Encodable {
            var model: String
            var costUSD: Double
            var savedUSD: Double
            var requests: Int
            var cacheHits: Int

            enum CodingKeys: String, CodingKey {
                case model, requests
                case costUSD = "cost_usd"
                case savedUSD = "saved_usd"
                case cacheHits = "cache_hits"
            }
        }

        struct Breaker: Encodable {
            var upstream: String
            var traffic: String
            var state: String
        }

        struct Latency: Encodable {
            var model: String
            var upstream: String
            var firstByteMs: Double

            enum CodingKeys: String, CodingKey {
                case model, upstream
                case firstByteMs = "first_byte_ms"
            }
        }

        var version = SidecarCoreVersion.string
        var uptimeSeconds: Double
        var today: Today
        var sinceStart: StatsBoard.Totals
        var sinceStartHitRate: Double
        var apps: [App]
        var models: [Model]
        var breakers: [Breaker]
        var slowest: [Latency]
        var history: [StatsBoard.Minute]

        enum CodingKeys: String, CodingKey {
            case version, today, apps, models, breakers, slowest, history
            case uptimeSeconds = "uptime_seconds"
            case sinceStart = "since_start"
            case sinceStartHitRate = "since_start_hit_rate"
        }
    }

    static func stats(_ phases: RequestPhases, now: Date = Date()) -> Stats {
        let todayNumber = SpendLedger.today(now)
        var today = Stats.Today(day: SpendLedger.dayText(todayNumber))
        var apps: [String: Stats.App] = [:]
        var models: [String: Stats.Model] = [:]
        for (key, totals) in phases.ledger.rows() where key.day == todayNumber {
            today.requests += totals.requests
            today.costUSD += totals.dollars
            today.savedUSD += totals.saved
            today.cacheHits += totals.hits
            apps[key.app, default: .init(app: key.app, costUSD: 0, savedUSD: 0, requests: 0)].costUSD += totals.dollars
            apps[key.app]?.savedUSD += totals.saved
            apps[key.app]?.requests += totals.requests
            models[key.model, default: .init(model: key.model, costUSD: 0, savedUSD: 0, requests: 0, cacheHits: 0)]
                .costUSD += totals.dollars
            models[key.model]?.savedUSD += totals.saved
            models[key.model]?.requests += totals.requests
            models[key.model]?.cacheHits += totals.hits
        }
        today.hitRate = today.requests > 0 ? Double(today.cacheHits) / Double(today.requests) : 0
        let budgets = phases.runtime.configuration.spend.dailyBudgets
        for (app, budget) in budgets {
            apps[app, default: .init(app: app, costUSD: 0, savedUSD: 0, requests: 0)].budgetUSD = budget
        }
        let (history, totals) = phases.stats.snapshot(now: now)
        let hits = (totals.cache["exact"] ?? 0) + (totals.cache["semantic"] ?? 0)
        let lookups = totals.cache.values.reduce(0, +)
        let breakers = phases.resilience.breakerStates.flatMap { upstream in
            upstream.states.map {
                Stats.Breaker(upstream: upstream.upstream, traffic: $0.traffic.rawValue, state: $0.state.label)
            }
        }
        let slowest = phases.runtime.selector.latency.snapshot.map {
            Stats.Latency(
                model: $0.key,
                upstream: phases.runtime.selector.owner(of: $0.key),
                firstByteMs: ($0.value * 1e6).rounded() / 1e3
            )
        }.sorted { $0.firstByteMs > $1.firstByteMs }
        return Stats(
            uptimeSeconds: (now.timeIntervalSince(phases.stats.started) * 10).rounded() / 10,
            today: today,
            sinceStart: totals,
            sinceStartHitRate: lookups > 0 ? Double(hits) / Double(lookups) : 0,
            apps: apps.values.sorted { ($0.costUSD, $0.app) > ($1.costUSD, $1.app) },
            models: models.values.sorted { ($0.costUSD, $0.model) > ($1.costUSD, $1.model) },
            breakers: breakers,
            slowest: slowest,
            history: history
        )
    }

    static func statsResponse(_ phases: RequestPhases, requestID: String) throws -> Response {
        try RoutingController.json(Self.stats(phases), requestID: requestID)
    }

    static func dashboard(requestID: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        headers[SidecarHeaders.requestID] = requestID
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: DashboardPage.html)))
    }
}
