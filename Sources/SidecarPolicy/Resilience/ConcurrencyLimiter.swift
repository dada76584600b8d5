import Synchronization

/// Caps the requests in flight to each upstream across every event loop (`max_concurrent`),
/// with a first-come, first-served line for the rest. Thread-safe; a waiter's callback runs on
/// the thread that releases a permit, so it must hop to its own event loop before acting.
///
/// ```swift
/// if limiter.acquire("llama", waiter: { permit in loop.execute { send() } }) { send() }
/// // ... when the call is over:
/// limiter.release("llama")
/// ```
public final class ConcurrencyLimiter: Sendable {
    /// Called once a permit is handed over (the waiter now holds it and must release it).
    public typealias Waiter = @Sendable () -> Void

    private struct Line {
        var limit: Int
        var inFlight = 0
        var waiters: [(id: UInt64, waiter: Waiter)] = []
    }

    private let lines: Mutex<(lines: [String: Line], nextID: UInt64)>

    /// - Parameter limits: upstream name -> requests at once; upstreams not listed (or 0) are unlimited.
    public init(limits: [String: Int]) {
        self.lines = Mutex((limits.filter { $0.value > 0 }.mapValues { Line(limit: $0) }, 1))
    }

    /// Whether `upstream` has a limit at all (unlimited upstreams never need a permit).
    public func isLimited(_ upstream: String) -> Bool {
        self.lines.withLock { $0.lines[upstream] != nil }
    }

    /// Takes a permit now (`.granted`), or queues `waiter` and returns its ticket (`.queued`).
    public func acquire(_ upstream: String, waiter: @escaping Waiter) -> Acquisition {
        self.lines.withLock { state in
            guard var line = state.lines[upstream] else { return .granted }
            if line.inFlight < line.limit {
                line.inFlight += 1
                state.lines[upstream] = line
                return .granted
            }
            let id = state.nextID
            state.nextID += 1
            line.waiters.append((id, waiter))
            state.lines[upstream] = line
            return .queued(ticket: id)
        }
    }

    /// Leaves the line without a permit; `false` when the permit was already handed over (the
    /// caller then holds it and must release it).
    public func cancel(_ upstream: String, ticket: UInt64) -> Bool {
        self.lines.withLock { state in
            guard var line = state.lines[upstream], let index = line.waiters.firstIndex(where: { $0.id == ticket })
            else { return false }
            line.waiters.remove(at: index)
            state.lines[upstream] = line
            return true
        }
    }

    /// Gives a permit back: to the first waiter in line, else to the pool.
    public func release(_ upstream: String) {
        let next: Waiter? = self.lines.withLock { state in
            guard var line = state.lines[upstream] else { return nil }
            defer { state.lines[upstream] = line }
            guard !line.waiters.isEmpty else {
                line.inFlight = max(0, line.inFlight - 1)
                return nil
            }
            return line.waiters.removeFirst().waiter  // the permit passes on; inFlight stays
        }
        next?()
    }

    /// Requests in flight to `upstream` (for tests and metrics).
    public func inFlight(_ upstream: String) -> Int {
        self.lines.withLock { $0.lines[upstream]?.inFlight ?? 0 }
    }

    public enum Acquisition: Sendable, Equatable {
        case granted
        case queued(ticket: UInt64)
    }
}
