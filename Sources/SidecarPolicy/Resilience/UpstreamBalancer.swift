import Synchronization

/// Spreads requests over several instances of one upstream, skipping instances whose circuit
/// breaker rejects: a thread-safe shell around `UpstreamBalancerStateMachine`.
///
/// Every successful `acquire()` must be matched by exactly one `release(_:)` when the request
/// ends (stream included). The caller records the attempt's result on `lease.breaker` with
/// `wasProbe: lease.isProbe`.
///
/// Locking: selection runs under the balancer's lock and calls each candidate's
/// `CircuitBreaker.admit()` (which takes the breaker's lock), so a breaker's `onTransition`
/// callback may run under the balancer's lock: it must not call back into the balancer.
///
/// ```swift
/// let balancer = UpstreamBalancer(instances: [.init(id: "ollama-a", breaker: a), .init(id: "ollama-b", breaker: b)])
/// guard let lease = balancer.acquire() else { /* all breakers open: 503 */ return }
/// defer { balancer.release(lease) }
/// ```
public final class UpstreamBalancer: Sendable {
    /// One instance: an id and, optionally, the breaker that guards it.
    public struct Instance: Sendable {
        /// The instance's id (e.g. the upstream name), reported back in the lease.
        public var id: String
        /// The breaker consulted before the instance is picked; `nil` means always available.
        public var breaker: CircuitBreaker?

        /// Creates an instance.
        public init(id: String, breaker: CircuitBreaker? = nil) {
            self.id = id
            self.breaker = breaker
        }
    }

    /// A picked instance with one request counted in flight on it.
    public struct Lease: Sendable {
        /// The instance's id.
        public let id: String
        /// The instance's index in the balancer.
        public let index: Int
        /// Whether the breaker admitted this request as a half-open probe.
        public let isProbe: Bool
        /// The instance's breaker, to record the result on.
        public let breaker: CircuitBreaker?
    }

    /// The result of `select()`.
    public enum Selection: Sendable {
        /// An instance was picked.
        case leased(Lease)
        /// No instance is available; `retryAfter` is the shortest wait any breaker reported
        /// (`nil` when there are no instances).
        case unavailable(retryAfter: Duration?)
    }

    private let instances: [Instance]
    private let machine: Mutex<UpstreamBalancerStateMachine>

    /// Creates a balancer over `instances` (in the given order) with `strategy`.
    public init(instances: [Instance], strategy: UpstreamBalancerStateMachine.Strategy = .roundRobin) {
        self.instances = instances
        self.machine = Mutex(UpstreamBalancerStateMachine(instanceCount: instances.count, strategy: strategy))
    }

    /// The instance ids in order.
    public var instanceIDs: [String] { self.instances.map(\.id) }

    /// Picks an instance, or says why none is available.
    public func select() -> Selection {
        let instances = self.instances
        return self.machine.withLock { machine -> Selection in
            var shortestWait: Duration?
            var admittedAsProbe = false
            let picked = machine.select { index in
                let admission = instances[index].breaker?.admit() ?? .allowed
                switch admission {
                case .allowed:
                    return true
                case .allowedAsProbe:
                    admittedAsProbe = true
                    return true
                case .rejected(let retryAfter):
                    shortestWait = min(shortestWait ?? retryAfter, retryAfter)
                    return false
                }
            }
            guard let picked else { return .unavailable(retryAfter: shortestWait) }
            let instance = instances[picked]
            return .leased(Lease(id: instance.id, index: picked, isProbe: admittedAsProbe, breaker: instance.breaker))
        }
    }

    /// Picks an instance, or returns `nil` if every breaker rejects (or there are no instances).
    public func acquire() -> Lease? {
        if case .leased(let lease) = self.select() { return lease }
        return nil
    }

    /// Ends the request counted by `lease`.
    public func release(_ lease: Lease) {
        self.machine.withLock { $0.release(lease.index) }
    }

    /// Requests in flight per instance id.
    public func inFlight() -> [String: Int] {
        let counts = self.machine.withLock { $0.inFlight }
        var result: [String: Int] = [:]
        for (instance, count) in zip(self.instances, counts) {
            result[instance.id, default: 0] += count
        }
        return result
    }
}
