import NIOCore
import Synchronization

/// How many proxied requests are answered at once (`[limits] max_in_flight`), with a bounded
/// FIFO queue for the ones beyond (`max_queued`). Shared by every event loop; kept across
/// reloads (a reload changes the bounds, not who holds a slot).
///
/// A request ``enter(_:)``s and, once answered, ``leave()``s; a request that left the queue
/// without being admitted (its wait ran out, its client went away) ``abandon(_:)``s instead.
final class AdmissionGate: Sendable {
    enum Entry: Equatable {
        case admitted
        /// Waiting; `resume` is called (from any thread) when a slot is handed over.
        case queued(id: UInt64)
        /// In flight and queue full.
        case refused
    }

    private struct Waiter {
        var id: UInt64
        var resume: @Sendable () -> Void
    }

    private struct State {
        var maxInFlight: Int
        var maxQueued: Int
        var inFlight = 0
        var waiters = CircularBuffer<Waiter>()
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>

    init(maxInFlight: Int, maxQueued: Int) {
        self.state = Mutex(State(maxInFlight: maxInFlight, maxQueued: maxQueued))
    }

    /// New bounds (on reload). Raising `maxInFlight` admits waiters at once.
    func update(maxInFlight: Int, maxQueued: Int) {
        let resumed = self.state.withLock { state -> [Waiter] in
            state.maxInFlight = maxInFlight
            state.maxQueued = maxQueued
            return Self.handOver(&state)
        }
        for waiter in resumed { waiter.resume() }
    }

    /// Requests holding a slot, and requests waiting for one.
    var counts: (inFlight: Int, queued: Int) {
        self.state.withLock { ($0.inFlight, $0.waiters.count) }
    }

    /// Takes a slot if one is free (the common case: nothing to wait for, nothing allocated).
    func tryEnter() -> Bool {
        self.state.withLock { state in
            guard state.maxInFlight == 0 || state.inFlight < state.maxInFlight else { return false }
            state.inFlight += 1
            return true
        }
    }

    /// Takes a slot, or a place in the queue (`resume` runs when the slot comes), or neither.
    func enter(_ resume: @escaping @Sendable () -> Void) -> Entry {
        self.state.withLock { state in
            if state.maxInFlight == 0 || state.inFlight < state.maxInFlight {
                state.inFlight += 1
                return .admitted
            }
            guard state.waiters.count < state.maxQueued else { return .refused }
            state.nextID &+= 1
            state.waiters.append(Waiter(id: state.nextID, resume: resume))
            return .queued(id: state.nextID)
        }
    }

    /// Gives a slot back; the first waiter gets it.
    func leave() {
        let resumed = self.state.withLock { state -> [Waiter] in
            state.inFlight -= 1
            return Self.handOver(&state)
        }
        for waiter in resumed { waiter.resume() }
    }

    /// Takes a waiter out of the queue. `false` when it is no longer there: its slot was handed
    /// over (its `resume` has run or is about to), and it must ``leave()`` in turn.
    func abandon(_ id: UInt64) -> Bool {
        self.state.withLock { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return false }
            state.waiters.remove(at: index)
            return true
        }
    }

    private static func handOver(_ state: inout State) -> [Waiter] {
        var resumed: [Waiter] = []
        while !state.waiters.isEmpty && (state.maxInFlight == 0 || state.inFlight < state.maxInFlight) {
            state.inFlight += 1
            resumed.append(state.waiters.removeFirst())
        }
        return resumed
    }
}
