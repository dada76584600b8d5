/// `[limits]`: what the sidecar admits, so that overload is shed cleanly (an OpenAI-shaped 429,
/// 431, 408 or 503) instead of slowing every request down.
public struct LimitsConfiguration: Sendable, Equatable {
    /// A per-app rate: requests and tokens per minute (token buckets that refill continuously).
    public struct Rate: Sendable, Equatable {
        /// Requests per minute; 0 = no limit.
        public var requestsPerMinute: Int
        /// Prompt plus completion tokens per minute; 0 = no limit.
        public var tokensPerMinute: Int

        public init(requestsPerMinute: Int = 0, tokensPerMinute: Int = 0) {
            self.requestsPerMinute = requestsPerMinute
            self.tokensPerMinute = tokensPerMinute
        }

        public var isLimited: Bool { self.requestsPerMinute > 0 || self.tokensPerMinute > 0 }
    }

    /// Proxied requests answered at once (over all connections); 0 = no limit.
    public var maxInFlight: Int
    /// Requests waiting for a slot beyond `maxInFlight`; past it, 503 at once.
    public var maxQueued: Int
    /// The longest a request waits in that queue before it gets 503.
    public var queueTimeout: Duration
    /// Client connections open at once; a connection beyond it is closed as it is accepted.
    public var maxConnections: Int
    /// The request line plus all header fields, in bytes; past it, 431.
    public var maxHeaderBytes: Int
    /// The request target or one header field, in bytes; past it, 431.
    public var maxFieldBytes: Int
    /// Header fields per request; past it, 431.
    public var maxHeaders: Int
    /// From a request's first byte to its last (head and body); past it, 408 and the connection closes.
    public var requestRead: Duration
    /// A kept-alive connection with no request in progress is closed after this long.
    public var idleConnection: Duration
    /// The rate every app gets unless `apps` names it.
    public var rate: Rate
    /// Rates for named apps.
    public var appRates: [String: Rate]

    public init(
        maxInFlight: Int = 1024,
        maxQueued: Int = 1024,
        queueTimeout: Duration = .seconds(30),
        maxConnections: Int = 4096,
        maxHeaderBytes: Int = 65_536,
        maxFieldBytes: Int = 16_384,
        maxHeaders: Int = 100,
        requestRead: Duration = .seconds(30),
        idleConnection: Duration = .seconds(75),
        rate: Rate = Rate(),
        appRates: [String: Rate] = [:]
    ) {
        self.maxInFlight = maxInFlight
        self.maxQueued = maxQueued
        self.queueTimeout = queueTimeout
        self.maxConnections = maxConnections
        self.maxHeaderBytes = maxHeaderBytes
        self.maxFieldBytes = maxFieldBytes
        self.maxHeaders = maxHeaders
        self.requestRead = requestRead
        self.idleConnection = idleConnection
        self.rate = rate
        self.appRates = appRates
    }

    /// The rate `app` is held to.
    public func rate(for app: String) -> Rate { self.appRates[app] ?? self.rate }

    /// Whether any app has a rate limit.
    public var limitsRates: Bool { self.rate.isLimited || self.appRates.values.contains { $0.isLimited } }
}
