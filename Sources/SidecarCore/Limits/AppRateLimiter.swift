import Synchronization

/// Per-app rate limits: a token bucket of requests and one of tokens per app, each holding a
/// minute's worth and refilling continuously (`[limits] requests_per_minute`,
/// `tokens_per_minute`, per-app `apps`).
///
/// A request is admitted while its app has a whole request left and its token bucket is not in
/// debt; admission takes one request and the prompt's estimated tokens, and the answer's
/// completion tokens are charged when it ends, so a bucket may go into debt by one answer and
/// the next request waits until it is paid back. Shared by every event loop; kept across reloads
/// (a reload changes the rates, not what was used).
final class AppRateLimiter: Sendable {
    enum Verdict: Equatable {
        case admitted
        /// `what` is `requests` or `tokens`.
        case limited(what: String, limit: Int, retryAfter: Duration)
    }

    private struct Bucket {
        var level: Double
        var updated: ContinuousClock.Instant

        /// Refills at `perMinute` a minute, up to a minute's worth.
        mutating func refill(perMinute: Int, now: ContinuousClock.Instant) {
            let seconds =
                Double((now - self.updated).components.seconds)
                + Double((now - self.updated).components.attoseconds) / 1e18
            self.level = min(Double(perMinute), self.level + seconds * Double(perMinute) / 60)
            self.updated = now
        }

        /// How long until the level reaches `target`.
        func wait(until target: Double, perMinute: Int) -> Duration {
            let seconds = max(0, target - self.level) * 60 / Double(perMinute)
            return .milliseconds(Int((seconds * 1000).rounded(.up)))
        }
    }

    private struct Buckets {
        var requests: Bucket
        var tokens: Bucket
    }

    private struct State {
        var limits: LimitsConfiguration
        var apps: [String: Buckets] = [:]
    }

    /// Apps tracked at once; beyond it, apps whose buckets are full are forgotten (a full bucket
    /// is what a new app starts with).
    static let maxApps = 10_000
    private let state: Mutex<State>

    init(limits: LimitsConfiguration) {
        self.state = Mutex(State(limits: limits))
    }

    /// Takes the new rates (on reload); buckets keep their levels.
    func update(_ limits: LimitsConfiguration) {
        self.state.withLock { $0.limits = limits }
    }

    /// Admits one request of `app` with about `tokens` prompt tokens, or says which limit it hit.
    func admit(app: String, tokens: Int, now: ContinuousClock.Instant = .now) -> Verdict {
        self.state.withLock { state in
            let rate = state.limits.rate(for: app)
            guard rate.isLimited else { return .admitted }
            var buckets =
                state.apps[app]
                ?? Buckets(
                    requests: Bucket(level: Double(rate.requestsPerMinute), updated: now),
                    tokens: Bucket(level: Double(rate.tokensPerMinute), updated: now)
                )
            if rate.requestsPerMinute > 0 {
                buckets.requests.refill(perMinute: rate.requestsPerMinute, now: now)
                if buckets.requests.level < 1 {
                    state.apps[app] = buckets
                    return .limited(
                        what: "requests",
                        limit: rate.requestsPerMinute,
                        retryAfter: buckets.requests.wait(until: 1, perMinute: rate.requestsPerMinute)
                    )
                }
            }
            if rate.tokensPerMinute > 0 {
                buckets.tokens.refill(perMinute: rate.tokensPerMinute, now: now)
                if buckets.tokens.level <= 0 {
                    state.apps[app] = buckets
                    return .limited(
                        what: "tokens",
                        limit: rate.tokensPerMinute,
                        retryAfter: buckets.tokens.wait(until: 1, perMinute: rate.tokensPerMinute)
                    )
                }
                buckets.tokens.level -= Double(max(0, tokens))
            }
            if rate.requestsPerMinute > 0 { buckets.requests.level -= 1 }
            if state.apps[app] == nil && state.apps.count >= Self.maxApps {
                Self.forgetFullBuckets(&state, now: now)
            }
            state.apps[app] = buckets
            return .admitted
        }
    }

    /// Charges `tokens` more to `app`'s token bucket (what an answer used beyond the estimate
    /// taken on arrival; negative gives back an estimate that was too high).
    func charge(app: String, tokens: Int) {
        guard tokens != 0 else { return }
        self.state.withLock { state in
            let perMinute = state.limits.rate(for: app).tokensPerMinute
            guard perMinute > 0, var level = state.apps[app]?.tokens.level else { return }
            level = min(Double(perMinute), level - Double(tokens))
            state.apps[app]?.tokens.level = level
        }
    }

    private static func forgetFullBuckets(_ state: inout State, now: ContinuousClock.Instant) {
        let limits = state.limits
        state.apps = state.apps.filter { app, buckets in
            var buckets = buckets
            let rate = limits.rate(for: app)
            buckets.requests.refill(perMinute: rate.requestsPerMinute, now: now)
            buckets.tokens.refill(perMinute: rate.tokensPerMinute, now: now)
            return buckets.requests.level < Double(rate.requestsPerMinute)
                || buckets.tokens.level < Double(rate.tokensPerMinute)
        }
        if state.apps.count >= Self.maxApps { state.apps.removeAll(keepingCapacity: true) }
    }
}
