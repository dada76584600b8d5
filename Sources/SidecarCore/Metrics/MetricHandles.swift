import CoreMetrics
import Synchronization

/// Metric objects by label and dimensions, created once through the factory and then reused.
///
/// Creating a swift-metrics `Counter` asks the factory every time (the Prometheus factory
/// sanitises names and looks the series up under its lock); the request path records about
/// ten series per request, so the handles are kept here instead.
final class MetricHandles: Sendable {
    /// Label and dimension values (a label always has the same dimension names, in order, so
    /// the names are not part of the key). Up to three values need no allocation.
    private struct Key: Hashable {
        var label: String
        var first: String
        var second: String
        var third: String
        var rest: [String]

        init(_ label: String, _ dimensions: [(String, String)]) {
            self.label = label
            self.first = dimensions.count > 0 ? dimensions[0].1 : ""
            self.second = dimensions.count > 1 ? dimensions[1].1 : ""
            self.third = dimensions.count > 2 ? dimensions[2].1 : ""
            self.rest = dimensions.count > 3 ? dimensions.dropFirst(3).map(\.1) : []
        }
    }

    private let factory: any MetricsFactory
    private let counters = Mutex<[Key: Counter]>([:])
    private let floatingCounters = Mutex<[Key: FloatingPointCounter]>([:])
    private let timers = Mutex<[Key: Timer]>([:])
    private let gauges = Mutex<[Key: Gauge]>([:])
    private let modelSeries = Mutex<[String: ModelSeries]>([:])
    private let requestSeries = Mutex<[RequestKey: RequestSeries]>([:])
    private let upstreamSeries = Mutex<[UpstreamKey: UpstreamSeries]>([:])

    /// The series every answered request touches, found with one lookup.
    struct RequestSeries: Sendable {
        /// `llm_sidecar_requests_total{endpoint,model,tier,cache,status}`
        let requests: Counter
        /// `llm_sidecar_request_duration_seconds{endpoint}`
        let duration: Timer
    }

    private struct RequestKey: Hashable {
        var endpoint: String
        var model: String
        var tier: String
        var cache: String
        var status: Int
    }

    /// Dollars spent and saved, by model and app.
    struct CostSeries: Sendable {
        let cost: FloatingPointCounter
        /// Dollars priced from estimated token counts (`source="estimate"`).
        let estimatedCost: FloatingPointCounter
        let saved: FloatingPointCounter
    }

    private struct CostKey: Hashable {
        var model: String
        var app: String
    }

    private let costSeries = Mutex<[CostKey: CostSeries]>([:])

    /// The series every upstream response head touches, found with one lookup.
    struct UpstreamSeries: Sendable {
        /// `llm_sidecar_upstream_responses_total{upstream,status}`
        let responses: Counter
        /// `llm_sidecar_upstream_first_byte_seconds{upstream}`
        let firstByte: Timer
    }

    private struct UpstreamKey: Hashable {
        var upstream: String
        var status: Int
    }

    /// The per-model series a priced answer touches, found with one lookup.
    struct ModelSeries: Sendable {
        let promptTokens: Counter
        let completionTokens: Counter
    }

    init(factory: any MetricsFactory) {
        self.factory = factory
    }

    func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let factory = self.factory
        return Self.handle(in: self.counters, Key(label, dimensions)) {
            Counter(label: label, dimensions: dimensions, factory: factory)
        }
    }

    func floatingCounter(_ label: String, _ dimensions: [(String, String)]) -> FloatingPointCounter {
        let factory = self.factory
        return Self.handle(in: self.floatingCounters, Key(label, dimensions)) {
            FloatingPointCounter(label: label, dimensions: dimensions, factory: factory)
        }
    }

    func timer(_ label: String, _ dimensions: [(String, String)]) -> Timer {
        let factory = self.factory
        return Self.handle(in: self.timers, Key(label, dimensions)) {
            Timer(label: label, dimensions: dimensions, factory: factory)
        }
    }

    func gauge(_ label: String, _ dimensions: [(String, String)]) -> Gauge {
        let factory = self.factory
        return Self.handle(in: self.gauges, Key(label, dimensions)) {
            Gauge(label: label, dimensions: dimensions, factory: factory)
        }
    }

    func costSeries(model: String, app: String) -> CostSeries {
        Self.handle(in: self.costSeries, CostKey(model: model, app: app)) {
            CostSeries(
                cost: self.floatingCounter(
                    "llm_sidecar_cost_usd_total",
                    [("model", model), ("app", app), ("source", "usage")]
                ),
                estimatedCost: self.floatingCounter(
                    "llm_sidecar_cost_usd_total",
                    [("model", model), ("app", app), ("source", "estimate")]
                ),
                saved: self.floatingCounter("llm_sidecar_saved_usd_total", [("model", model), ("app", app)])
            )
        }
    }

    func series(model: String) -> ModelSeries {
        self.modelSeries.withLock { all in
            if let existing = all[model] { return existing }
            let created = ModelSeries(
                promptTokens: self.counter("llm_sidecar_tokens_total", [("model", model), ("kind", "prompt")]),
                completionTokens: self.counter("llm_sidecar_tokens_total", [("model", model), ("kind", "completion")])
            )
            all[model] = created
            return created
        }
    }

    func requestSeries(endpoint: String, model: String, tier: String, cache: String, status: Int) -> RequestSeries {
        let key = RequestKey(endpoint: endpoint, model: model, tier: tier, cache: cache, status: status)
        return Self.handle(in: self.requestSeries, key) {
            RequestSeries(
                requests: self.counter(
                    "llm_sidecar_requests_total",
                    [
                        ("endpoint", endpoint), ("model", model), ("tier", tier), ("cache", cache),
                        ("status", String(status)),
                    ]
                ),
                duration: self.timer("llm_sidecar_request_duration_seconds", [("endpoint", endpoint)])
            )
        }
    }

    func upstreamSeries(upstream: String, status: Int) -> UpstreamSeries {
        Self.handle(in: self.upstreamSeries, UpstreamKey(upstream: upstream, status: status)) {
            UpstreamSeries(
                responses: self.counter(
                    "llm_sidecar_upstream_responses_total",
                    [("upstream", upstream), ("status", String(status))]
                ),
                firstByte: self.timer("llm_sidecar_upstream_first_byte_seconds", [("upstream", upstream)])
            )
        }
    }

    /// The handle cached under `key`, made (under the cache's lock) on first use. `make` may
    /// take the plain handles' locks: series locks are always taken before those.
    private static func handle<CacheKey: Hashable & Sendable, Handle: Sendable>(
        in cache: borrowing Mutex<[CacheKey: Handle]>,
        _ key: CacheKey,
        make: () -> Handle
    )
        -> Handle
    {
        cache.withLock { handles in
            if let existing = handles[key] { return existing }
            let created = make()
            handles[key] = created
            return created
        }
    }
}
