import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A Redis client for a request path: a small pool of hiredis connections whose blocking calls
/// run on a dedicated thread pool, with tight timeouts and fail-fast behaviour while Redis is
/// down.
///
/// ### Calls
/// ``command(_:on:)-([[UInt8]],_)`` sends one command and ``pipeline(_:on:)`` several in one
/// round trip; both complete their future on the event loop they are given. Arguments are
/// binary-safe. An error the server answers with is a successful call whose reply is
/// ``RedisReply/error(_:)``; a call *fails* with a ``RedisError``.
///
/// ### Pool
/// At most ``RedisConfiguration/poolSize`` connections are open, each used by one call at a
/// time, on a `NIOThreadPool` of as many threads, so hiredis never blocks an event loop nor the
/// cooperative pool. When all are busy a call waits in line (first in, first out) for at most
/// the command timeout; when ``RedisConfiguration/maxWaiters`` calls wait already, it fails at
/// once with ``RedisError/Code/tooManyWaiters``.
///
/// ### Outages
/// When a call hits an I/O error or a timeout, its connection is dropped and the client goes
/// ``State/down``: the calls in line and every later call fail at once with
/// ``RedisError/Code/unavailable``, and no call connects on its own. In the background the
/// client retries after ``RedisConfiguration/reconnectBackoff`` (100 ms, doubling, up to 5 s,
/// with jitter); the first connection that answers brings it back ``State/up``. Each change is
/// reported once to `onStateChange`.
///
/// ### Shutting down
/// Call ``syncShutdown()`` or ``shutdown()`` once done: it fails the calls in line, lets the
/// running ones finish (each within its timeout), frees every connection and stops the threads.
/// Later calls fail with ``RedisError/Code/shutdown``.
///
/// ```swift
/// let client = try RedisClient(
///     configuration: RedisConfiguration(url: "redis://:secret@127.0.0.1:6379/1"),
///     onStateChange: { state in logger.warning("redis \(state)") }
/// )
/// let reply = try await client.command(["SET", "greeting", "hello", "EX", "60"])
/// try await client.shutdown()
/// ```
package final class RedisClient: Sendable {
    /// Whether the client can take calls.
    package enum State: String, Sendable, Hashable, CustomStringConvertible {
        /// Calls go to Redis (the state a new client starts in).
        case up
        /// Redis broke; calls fail at once until a reconnect attempt succeeds.
        case down
        /// ``RedisClient/syncShutdown()`` or ``RedisClient/shutdown()`` was called.
        case shutdown

        package var description: String {
            self.rawValue
        }
    }

    /// The configuration the client was made with.
    package let configuration: RedisConfiguration
    let eventLoopGroup: any EventLoopGroup
    let threadPool: NIOThreadPool
    let logger: Logger
    let onStateChange: @Sendable (State) -> Void
    let machine: Mutex<RedisPoolStateMachine>

    /// Makes a client and starts its threads; no connection is opened until the first call.
    ///
    /// - Parameters:
    ///   - configuration: Where Redis is and the limits; checked with
    ///     ``RedisConfiguration/validate()``.
    ///   - eventLoopGroup: Where reconnect and waiting timers run, and where the `async` calls'
    ///     futures complete.
    ///   - logger: For connection failures and reconnect attempts, at `debug` level: the state
    ///     changes themselves go to `onStateChange` for the caller to log.
    ///   - onStateChange: Called once for each change of ``State``, on no particular thread.
    /// - Throws: ``RedisConfigurationError`` when the configuration cannot be used.
    package init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "sidecar.redis"),
        onStateChange: @escaping @Sendable (State) -> Void = { _ in }
    ) throws(RedisConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        var logger = logger
        logger[metadataKey: "redis.url"] = "\(configuration.url)"
        self.logger = logger
        self.onStateChange = onStateChange
        self.machine = Mutex(
            RedisPoolStateMachine(poolSize: configuration.poolSize, maxWaiters: configuration.maxWaiters)
        )
        self.threadPool = NIOThreadPool(numberOfThreads: configuration.poolSize)
        self.threadPool.start()
    }

    /// The client's current state.
    package var state: State {
        switch self.machine.withLock({ $0.lifecycle }) {
        case .up: return .up
        case .down: return .down
        case .shutdown: return .shutdown
        }
    }

    /// Whether calls go to Redis now (the state is ``State/up``).
    package var isAvailable: Bool {
        self.machine.withLock { $0.lifecycle == .up }
    }

    /// Sends one command, such as `["SET", key, value, "EX", "60"]`, binary-safe.
    ///
    /// - Parameters:
    ///   - arguments: The command's name and arguments; at least the name.
    ///   - eventLoop: The event loop the returned future completes on.
    /// - Returns: The reply (an error reply included); the future fails with ``RedisError``.
    package func command(_ arguments: [[UInt8]], on eventLoop: any EventLoop) -> EventLoopFuture<RedisReply> {
        self.pipeline([arguments], on: eventLoop).flatMapThrowing { replies in
            guard let reply = replies.first else {
                throw RedisError.unavailable("no reply was read")
            }
            return reply
        }
    }

    /// Sends one command given as text (each argument sent as its UTF-8 bytes).
    package func command(_ arguments: [String], on eventLoop: any EventLoop) -> EventLoopFuture<RedisReply> {
        self.command(arguments.map { Array($0.utf8) }, on: eventLoop)
    }

    /// Sends several commands in one write and reads their replies in order: one round trip,
    /// for instance a `SET` and an `XADD` together. Not a transaction: wrap them in
    /// `MULTI`/`EXEC` for that.
    ///
    /// The whole pipeline shares one command timeout. When the connection breaks midway the
    /// future fails, and some commands may have run.
    ///
    /// - Returns: One reply per command, in order; the future fails with ``RedisError``.
    package func pipeline(_ commands: [[[UInt8]]], on eventLoop: any EventLoop) -> EventLoopFuture<[RedisReply]> {
        guard !commands.isEmpty, commands.allSatisfy({ !$0.isEmpty }) else {
            return eventLoop.makeFailedFuture(RedisError(.invalidCommand, "a call needs at least one command name"))
        }
        let promise = eventLoop.makePromise(of: [RedisReply].self)
        let request = RedisRequest(commands: commands, promise: promise)
        switch self.machine.withLock({ $0.lease(request) }) {
        case .run(let request, let connection):
            self.submit(request, on: connection, generation: connection.generation)
        case .open(let request, let generation):
            self.submit(request, on: nil, generation: generation)
        case .wait(let id):
            eventLoop.scheduleTask(in: self.configuration.commandTimeout) {
                self.waiterTimedOut(id: id)
            }
        case .fail(let request, let error):
            request.promise.fail(error)
        }
        return promise.futureResult
    }

    /// Sends one command; completes on one of the client's event loops.
    ///
    /// The call is bounded by the timeouts rather than by task cancellation.
    package func command(_ arguments: [[UInt8]]) async throws -> RedisReply {
        try await self.command(arguments, on: self.eventLoopGroup.any()).get()
    }

    /// Sends one command given as text.
    package func command(_ arguments: [String]) async throws -> RedisReply {
        try await self.command(arguments, on: self.eventLoopGroup.any()).get()
    }

    /// Sends several commands in one round trip; see ``pipeline(_:on:)``.
    package func pipeline(_ commands: [[[UInt8]]]) async throws -> [RedisReply] {
        try await self.pipeline(commands, on: self.eventLoopGroup.any()).get()
    }

    /// Shuts the client down and waits until every connection is freed and the threads stopped.
    ///
    /// Calls in line fail with ``RedisError/Code/shutdown``; running calls finish (each within
    /// its timeout). A second call returns at once. Blocks: never call it on an event loop.
    package func syncShutdown() throws {
        guard self.beginShutdown() else {
            return
        }
        try self.threadPool.syncShutdownGracefully()
    }

    /// Shuts the client down; see ``syncShutdown()``.
    package func shutdown() async throws {
        guard self.beginShutdown() else {
            return
        }
        try await self.threadPool.shutdownGracefully()
    }

    /// Moves to `shutdown`; `false` when it was there already.
    private func beginShutdown() -> Bool {
        guard let action = self.machine.withLock({ $0.shutdown() }) else {
            return false
        }
        action.reconnectTask?.cancel()
        for connection in action.idleToClose {
            connection.close()
        }
        for request in action.failedWaiters {
            request.promise.fail(RedisError.shutdown)
        }
        self.logger.debug("redis client shut down")
        self.onStateChange(.shutdown)
        return true
    }
}
