/// The pure core of `UpstreamBalancer`: picks one of several instances of an upstream.
///
/// Instances are identified by their index. Two strategies:
/// - `.roundRobin`: instances in turn, starting after the last one picked.
/// - `.leastLoaded`: the instance with the fewest requests in flight; ties go to the one that
///   comes first in round-robin order, so equal load degrades to round-robin.
///
/// Unavailable instances (e.g. breaker open) are skipped by `select(where:)`; the turn passes to
/// the instance after the one picked.
public struct UpstreamBalancerStateMachine: Sendable, Hashable {
    /// How an instance is chosen.
    public enum Strategy: String, Sendable, Hashable, CaseIterable {
        /// Each instance in turn.
        case roundRobin = "round_robin"
        /// Fewest requests in flight; ties by round-robin.
        case leastLoaded = "least_loaded"
    }

    /// The strategy in use.
    public let strategy: Strategy
    /// Requests in flight per instance index.
    public private(set) var inFlight: [Int]
    /// The index round-robin order starts from.
    private var cursor: Int

    /// Creates a balancer over `instanceCount` instances (0 is allowed: nothing is ever selected).
    public init(instanceCount: Int, strategy: Strategy) {
        self.strategy = strategy
        self.inFlight = Array(repeating: 0, count: max(0, instanceCount))
        self.cursor = 0
    }

    /// The number of instances.
    public var instanceCount: Int { self.inFlight.count }

    /// Instance indices, most preferred first.
    public func preferenceOrder() -> [Int] {
        let count = self.inFlight.count
        guard count > 0 else { return [] }
        let roundRobin = (0..<count).map { (self.cursor + $0) % count }
        switch self.strategy {
        case .roundRobin:
            return roundRobin
        case .leastLoaded:
            // A stable sort keeps round-robin order among equally loaded instances.
            return roundRobin.enumerated()
                .sorted { lhs, rhs in
                    let (lhsLoad, rhsLoad) = (self.inFlight[lhs.element], self.inFlight[rhs.element])
                    return lhsLoad != rhsLoad ? lhsLoad < rhsLoad : lhs.offset < rhs.offset
                }
                .map(\.element)
        }
    }

    /// Picks the first instance in preference order for which `isAvailable` returns true, counts a
    /// request in flight on it and moves the round-robin turn past it.
    ///
    /// `isAvailable` is called in preference order until it returns true, so it may have side
    /// effects such as taking a circuit-breaker permit.
    public mutating func select(where isAvailable: (Int) -> Bool) -> Int? {
        for index in self.preferenceOrder() where isAvailable(index) {
            self.commit(index)
            return index
        }
        return nil
    }

    /// Counts a request in flight on `index` and moves the round-robin turn past it. Out-of-range indices are ignored.
    public mutating func commit(_ index: Int) {
        guard self.inFlight.indices.contains(index) else { return }
        self.inFlight[index] += 1
        self.cursor = (index + 1) % self.inFlight.count
    }

    /// Counts a request on `index` as finished. Never goes below zero; out-of-range indices are ignored.
    public mutating func release(_ index: Int) {
        guard self.inFlight.indices.contains(index) else { return }
        self.inFlight[index] = max(0, self.inFlight[index] - 1)
    }
}
