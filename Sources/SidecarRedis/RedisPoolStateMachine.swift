import NIOCore

/// A call: the commands to send in one write and where their replies go.
struct RedisRequest: Sendable {
    let commands: [[[UInt8]]]
    let promise: EventLoopPromise<[RedisReply]>
}

/// The pool's bookkeeping: which connections are idle, how many are open, who waits in line,
/// and whether Redis is up. It only decides; ``RedisClient`` carries the decisions out, outside
/// the lock, on the thread pool.
///
/// A *generation* counts the times the client went down. A connection remembers the generation
/// it was opened in, so that a call left over from before an outage can neither take the
/// client down a second time nor be parked for reuse.
struct RedisPoolStateMachine: Sendable {
    enum Lifecycle: Sendable, Hashable {
        case up
        /// Down; `attempt` counts the reconnect attempts that failed since.
        case down(attempt: Int)
        case shutdown
    }

    enum LeaseAction: Sendable {
        /// Run the request on this idle connection.
        case run(RedisRequest, RedisConnection)
        /// Open a connection in this generation, then run the request on it.
        case open(RedisRequest, generation: Int)
        /// The request waits in line; fail it with a timeout if it is still there then.
        case wait(id: UInt64)
        /// Fail the request at once.
        case fail(RedisRequest, RedisError)
    }

    enum ReleaseAction: Sendable {
        /// Run the next waiter on the same connection.
        case run(RedisRequest)
        /// The connection is idle again.
        case parked
        /// The connection is stale or the client is down or shut down: close it.
        case close
    }

    /// What to do when the client has just gone down.
    struct DownAction: Sendable {
        var failedWaiters: [RedisRequest]
        var idleToClose: [RedisConnection]
    }

    /// What to do when the client has just been shut down.
    struct ShutdownAction: Sendable {
        var failedWaiters: [RedisRequest]
        var idleToClose: [RedisConnection]
        var reconnectTask: Scheduled<Void>?
    }

    private struct Waiter: Sendable {
        var id: UInt64
        var request: RedisRequest
    }

    private(set) var lifecycle: Lifecycle = .up
    private(set) var generation = 0
    /// Connections open or being opened, idle or leased, of any generation.
    private(set) var openCount = 0
    private let poolSize: Int
    private let maxWaiters: Int
    private var idle: [RedisConnection] = []
    private var waiters = CircularBuffer<Waiter>()
    private var nextWaiterID: UInt64 = 0
    private var reconnectTask: Scheduled<Void>?

    init(poolSize: Int, maxWaiters: Int) {
        self.poolSize = poolSize
        self.maxWaiters = maxWaiters
    }

    var waiterCount: Int {
        self.waiters.count
    }

    /// A new call: a connection for it, a place in line, or a failure.
    mutating func lease(_ request: RedisRequest) -> LeaseAction {
        switch self.lifecycle {
        case .shutdown:
            return .fail(request, .shutdown)
        case .down:
            return .fail(request, .unavailable("redis is down; waiting for the next reconnect attempt"))
        case .up:
            if let connection = self.idle.popLast() {
                return .run(request, connection)
            }
            if self.openCount < self.poolSize {
                self.openCount += 1
                return .open(request, generation: self.generation)
            }
            guard self.waiters.count < self.maxWaiters else {
                return .fail(request, .tooManyWaiters)
            }
            self.nextWaiterID &+= 1
            self.waiters.append(Waiter(id: self.nextWaiterID, request: request))
            return .wait(id: self.nextWaiterID)
        }
    }

    /// A call finished well on `connection`.
    mutating func release(_ connection: RedisConnection) -> ReleaseAction {
        guard self.lifecycle == .up, connection.generation == self.generation else {
            self.openCount -= 1
            return .close
        }
        if let waiter = self.waiters.popFirst() {
            return .run(waiter.request)
        }
        self.idle.append(connection)
        return .parked
    }

    /// A connection of `generation` broke, or could not be opened; it is closed already.
    ///
    /// - Returns: What to do when this failure takes the client down; `nil` when it was down
    ///   already or the connection was from before the last outage.
    mutating func connectionFailed(generation: Int) -> DownAction? {
        self.openCount -= 1
        guard self.lifecycle == .up, generation == self.generation else {
            return nil
        }
        self.lifecycle = .down(attempt: 0)
        self.generation += 1
        let failed = self.waiters.map(\.request)
        self.waiters.removeAll()
        let idle = self.idle
        self.idle.removeAll()
        self.openCount -= idle.count
        return DownAction(failedWaiters: failed, idleToClose: idle)
    }

    /// A leased or opening connection was dropped without a call on it (the thread pool stopped).
    mutating func connectionDropped() {
        self.openCount -= 1
    }

    /// The waiter `id` ran out of time, if it is still in line.
    mutating func waiterTimedOut(id: UInt64) -> RedisRequest? {
        guard let index = self.waiters.firstIndex(where: { $0.id == id }) else {
            return nil
        }
        return self.waiters.remove(at: index).request
    }

    /// A reconnect attempt was scheduled.
    ///
    /// - Returns: `false` when the client was shut down meanwhile: cancel `task`.
    mutating func reconnectScheduled(_ task: Scheduled<Void>) -> Bool {
        guard case .down = self.lifecycle else {
            return false
        }
        self.reconnectTask = task
        return true
    }

    /// The generation to open a probe connection in; `nil` when no longer down.
    mutating func reconnectStarting() -> Int? {
        guard case .down = self.lifecycle else {
            return nil
        }
        self.reconnectTask = nil
        return self.generation
    }

    /// A probe connection answered.
    ///
    /// - Returns: `true` when the client is up again with `connection` idle; `false` when it was
    ///   shut down meanwhile: close `connection`.
    mutating func reconnectSucceeded(_ connection: RedisConnection) -> Bool {
        guard case .down = self.lifecycle, connection.generation == self.generation else {
            return false
        }
        self.lifecycle = .up
        self.openCount += 1
        self.idle.append(connection)
        return true
    }

    /// A probe failed.
    ///
    /// - Returns: The number of the next attempt; `nil` when shut down meanwhile.
    mutating func reconnectFailed() -> Int? {
        guard case .down(let attempt) = self.lifecycle else {
            return nil
        }
        self.lifecycle = .down(attempt: attempt + 1)
        return attempt + 1
    }

    /// Shuts down; `nil` when already shut down.
    mutating func shutdown() -> ShutdownAction? {
        guard self.lifecycle != .shutdown else {
            return nil
        }
        self.lifecycle = .shutdown
        let action = ShutdownAction(
            failedWaiters: self.waiters.map(\.request),
            idleToClose: self.idle,
            reconnectTask: self.reconnectTask
        )
        self.waiters.removeAll()
        self.openCount -= self.idle.count
        self.idle.removeAll()
        self.reconnectTask = nil
        return action
    }
}
