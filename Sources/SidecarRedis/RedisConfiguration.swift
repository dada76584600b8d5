import NIOCore

/// How a ``RedisClient`` connects, how long it waits, and how it recovers.
///
/// The defaults suit a cache in front of a request path: Redis must never slow a request by more
/// than a small timeout, so connecting and each command get 250 ms, and a broken Redis is retried
/// in the background rather than on the caller's time.
package struct RedisConfiguration: Sendable, Hashable {
    /// Where the server is, how to log in, and which database to select.
    package var url: RedisURL
    /// How long opening a connection (TCP or Unix socket) may take. Default 250 ms.
    ///
    /// Resolving a host name is not bounded by it (hiredis calls `getaddrinfo`): prefer an IP
    /// address, or a name the resolver answers locally.
    package var connectTimeout: TimeAmount
    /// How long a command (or a pipeline) may wait for its replies, and how long a call may wait
    /// in line for a free connection. Default 250 ms.
    package var commandTimeout: TimeAmount
    /// The most connections open at once, which is also the number of threads that run hiredis's
    /// blocking calls. Default 4.
    package var poolSize: Int
    /// The most calls waiting for a connection while all are busy; a call beyond that fails at
    /// once with ``RedisError/Code/tooManyWaiters``. Default 64.
    package var maxWaiters: Int
    /// How long to wait between reconnect attempts while Redis is down.
    package var reconnectBackoff: Backoff

    /// The delays between reconnect attempts: `initial`, doubling up to `maximum`, each with a
    /// random `jitter` fraction taken off so that many sidecars do not retry in step.
    package struct Backoff: Sendable, Hashable {
        /// The delay before the first reconnect attempt. Default 100 ms.
        package var initial: TimeAmount
        /// The longest delay. Default 5 s.
        package var maximum: TimeAmount
        /// The fraction of each delay, in `0...1`, by which it is randomly shortened. Default 0.2.
        package var jitter: Double

        package init(
            initial: TimeAmount = .milliseconds(100),
            maximum: TimeAmount = .seconds(5),
            jitter: Double = 0.2
        ) {
            self.initial = initial
            self.maximum = maximum
            self.jitter = jitter
        }

        /// The delay before reconnect attempt `attempt` (0 for the first), with jitter.
        package func delay(attempt: Int) -> TimeAmount {
            var generator = SystemRandomNumberGenerator()
            return self.delay(attempt: attempt, using: &generator)
        }

        /// The delay before reconnect attempt `attempt` (0 for the first), with jitter drawn
        /// from `generator`.
        package func delay(attempt: Int, using generator: inout some RandomNumberGenerator) -> TimeAmount {
            let doublings = min(max(attempt, 0), 62)
            var nanoseconds = self.initial.nanoseconds
            for _ in 0..<doublings where nanoseconds < self.maximum.nanoseconds {
                nanoseconds = nanoseconds.multipliedReportingOverflow(by: 2).overflow ? .max : nanoseconds * 2
            }
            nanoseconds = min(nanoseconds, self.maximum.nanoseconds)
            let jitter = min(max(self.jitter, 0), 1)
            guard jitter > 0 else {
                return .nanoseconds(nanoseconds)
            }
            let cut = Double.random(in: 0...jitter, using: &generator) * Double(nanoseconds)
            return .nanoseconds(max(1, nanoseconds - Int64(cut)))
        }
    }

    package init(
        url: RedisURL,
        connectTimeout: TimeAmount = .milliseconds(250),
        commandTimeout: TimeAmount = .milliseconds(250),
        poolSize: Int = 4,
        maxWaiters: Int = 64,
        reconnectBackoff: Backoff = Backoff()
    ) {
        self.url = url
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.poolSize = poolSize
        self.maxWaiters = maxWaiters
        self.reconnectBackoff = reconnectBackoff
    }

    /// A configuration for the server at `url`, parsed with ``RedisURL/init(parsing:)``, and
    /// the default limits.
    package init(url: String) throws(RedisConfigurationError) {
        self.init(url: try RedisURL(parsing: url))
    }

    /// Checks that the values can be used.
    ///
    /// - Throws: ``RedisConfigurationError`` naming the first value that cannot.
    package func validate() throws(RedisConfigurationError) {
        guard self.connectTimeout.nanoseconds > 0 else {
            throw RedisConfigurationError("redis connect timeout must be more than 0")
        }
        guard self.commandTimeout.nanoseconds > 0 else {
            throw RedisConfigurationError("redis command timeout must be more than 0")
        }
        guard (1...256).contains(self.poolSize) else {
            throw RedisConfigurationError("redis pool size must be in 1...256, not \(self.poolSize)")
        }
        guard self.maxWaiters >= 0 else {
            throw RedisConfigurationError("redis max waiters must be 0 or more, not \(self.maxWaiters)")
        }
        guard self.reconnectBackoff.initial.nanoseconds > 0 else {
            throw RedisConfigurationError("redis reconnect backoff must start above 0")
        }
        guard self.reconnectBackoff.maximum >= self.reconnectBackoff.initial else {
            throw RedisConfigurationError("redis reconnect backoff maximum must be at least its initial delay")
        }
        guard (0...1).contains(self.reconnectBackoff.jitter) else {
            throw RedisConfigurationError("redis reconnect backoff jitter must be in 0...1")
        }
        if case .tcp(_, let port) = self.url.endpoint, !(1...65_535).contains(port) {
            throw RedisConfigurationError("redis port must be in 1...65535, not \(port)")
        }
        guard self.url.database >= 0, self.url.database <= Int(Int32.max) else {
            throw RedisConfigurationError("redis database must be 0 or more, not \(self.url.database)")
        }
    }
}
