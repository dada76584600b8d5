import Logging
import NIOCore
import NIOPosix

// The work the pool's decisions lead to: running calls on the thread pool, handing connections
// on to waiters, going down, and reconnecting in the background.
extension RedisClient {
    /// Runs `request` on the thread pool, on `connection` or on a new one opened in `generation`.
    func submit(_ request: RedisRequest, on connection: RedisConnection?, generation: Int) {
        self.threadPool.submit { workState in
            guard case .active = workState else {
                connection?.close()
                self.machine.withLock { $0.connectionDropped() }
                request.promise.fail(RedisError.shutdown)
                return
            }
            self.run(request, on: connection, generation: generation)
        }
    }

    /// On a pool thread: opens the connection if needed, then runs `first` and, while calls wait
    /// in line, the next ones on the same connection.
    private func run(_ first: RedisRequest, on leased: RedisConnection?, generation: Int) {
        let connection: RedisConnection
        if let leased {
            connection = leased
        } else {
            do {
                connection = try RedisConnection.open(self.configuration, generation: generation)
            } catch {
                // Down first, so that the caller who sees the failure sees the client down.
                self.connectionFailed(generation: generation, error: error)
                first.promise.fail(error)
                return
            }
        }
        var request = first
        while true {
            let replies: [RedisReply]
            do {
                replies = try connection.execute(request.commands)
            } catch {
                connection.close()
                self.connectionFailed(generation: connection.generation, error: error)
                request.promise.fail(error)
                return
            }
            // Released before the caller hears back, so that its next call finds the connection
            // idle rather than opening another one.
            let next = self.machine.withLock { $0.release(connection) }
            request.promise.succeed(replies)
            switch next {
            case .run(let next):
                request = next
            case .parked:
                return
            case .close:
                connection.close()
                return
            }
        }
    }

    /// A waiter's time in line ran out.
    func waiterTimedOut(id: UInt64) {
        guard let request = self.machine.withLock({ $0.waiterTimedOut(id: id) }) else {
            return
        }
        request.promise.fail(
            RedisError.timeout(
                "no connection became free within \(Self.milliseconds(self.configuration.commandTimeout))"
            )
        )
    }

    /// A connection broke or could not be opened: go down when this is news.
    private func connectionFailed(generation: Int, error: RedisError) {
        guard let action = self.machine.withLock({ $0.connectionFailed(generation: generation) }) else {
            self.logger.debug("redis call failed", metadata: ["error": "\(error)"])
            return
        }
        for connection in action.idleToClose {
            connection.close()
        }
        let unavailable = RedisError.unavailable("redis went down: \(error.message)")
        for request in action.failedWaiters {
            request.promise.fail(unavailable)
        }
        self.logger.debug("redis down", metadata: ["error": "\(error)"])
        self.onStateChange(.down)
        self.scheduleReconnect(attempt: 0)
    }

    /// Schedules reconnect attempt `attempt` after its backoff delay.
    private func scheduleReconnect(attempt: Int) {
        let delay = self.configuration.reconnectBackoff.delay(attempt: attempt)
        let task = self.eventLoopGroup.any().scheduleTask(in: delay) {
            self.attemptReconnect(attempt: attempt)
        }
        if !self.machine.withLock({ $0.reconnectScheduled(task) }) {
            task.cancel()
        }
    }

    /// Opens a probe connection on the thread pool; it becomes the first idle connection when
    /// it answers.
    private func attemptReconnect(attempt: Int) {
        guard let generation = self.machine.withLock({ $0.reconnectStarting() }) else {
            return
        }
        self.threadPool.submit { workState in
            guard case .active = workState else {
                return
            }
            do {
                let connection = try RedisConnection.open(self.configuration, generation: generation, probe: true)
                guard self.machine.withLock({ $0.reconnectSucceeded(connection) }) else {
                    connection.close()
                    return
                }
                self.logger.debug("redis back", metadata: ["attempt": "\(attempt + 1)"])
                self.onStateChange(.up)
            } catch {
                guard let next = self.machine.withLock({ $0.reconnectFailed() }) else {
                    return
                }
                self.logger.debug(
                    "redis reconnect attempt failed",
                    metadata: ["attempt": "\(attempt + 1)", "error": "\(error)"]
                )
                self.scheduleReconnect(attempt: next)
            }
        }
    }

    static func milliseconds(_ amount: TimeAmount) -> String {
        "\(amount.nanoseconds / 1_000_000) ms"
    }
}
