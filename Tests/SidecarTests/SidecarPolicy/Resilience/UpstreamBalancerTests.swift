import Testing

@testable import SidecarCore
@testable import SidecarPolicy

@Suite struct UpstreamBalancerTests {
    @Test func roundRobinDistributesThreeHundredPicksExactly() {
        var machine = UpstreamBalancerStateMachine(instanceCount: 3, strategy: .roundRobin)
        var picks: [Int] = []
        for _ in 0..<300 {
            if let index = machine.select(where: { _ in true }) {
                picks.append(index)
                machine.release(index)
            }
        }
        #expect(picks.count == 300)
        #expect(picks == (0..<300).map { $0 % 3 })
    }

    @Test func roundRobinSkipsUnavailableAndPassesTheTurnOn() {
        var machine = UpstreamBalancerStateMachine(instanceCount: 4, strategy: .roundRobin)
        var picks: [Int] = []
        for _ in 0..<6 {
            if let index = machine.select(where: { $0 != 1 }) { picks.append(index) }
        }
        #expect(picks == [0, 2, 3, 0, 2, 3])
    }

    @Test func returnsNilWhenNothingIsAvailable() {
        var machine = UpstreamBalancerStateMachine(instanceCount: 3, strategy: .leastLoaded)
        #expect(machine.select(where: { _ in false }) == nil)
        #expect(machine.inFlight == [0, 0, 0])
        var empty = UpstreamBalancerStateMachine(instanceCount: 0, strategy: .roundRobin)
        #expect(empty.select(where: { _ in true }) == nil)
    }

    @Test func leastLoadedPicksFewestInFlight() {
        var machine = UpstreamBalancerStateMachine(instanceCount: 3, strategy: .leastLoaded)
        #expect(machine.select(where: { _ in true }) == 0)
        #expect(machine.select(where: { _ in true }) == 1)
        #expect(machine.select(where: { _ in true }) == 2)
        #expect(machine.select(where: { _ in true }) == 0)
        #expect(machine.inFlight == [2, 1, 1])
        machine.release(2)
        #expect(machine.select(where: { _ in true }) == 2)  // only instance with 0 in flight
        machine.release(1)
        machine.release(2)
        #expect(machine.inFlight == [2, 0, 0])
        // Tie between 1 and 2: round-robin turn is after 2, so 0 first, then 1 before 2.
        #expect(machine.preferenceOrder() == [1, 2, 0])
        #expect(machine.select(where: { _ in true }) == 1)
    }

    @Test func leastLoadedWithEqualLoadIsRoundRobin() {
        var machine = UpstreamBalancerStateMachine(instanceCount: 3, strategy: .leastLoaded)
        var picks: [Int] = []
        for _ in 0..<300 {
            if let index = machine.select(where: { _ in true }) {
                picks.append(index)
                machine.release(index)
            }
        }
        #expect(picks == (0..<300).map { $0 % 3 })
    }

    @Test func leastLoadedSkipsUnavailableInstance() {
        var machine = UpstreamBalancerStateMachine(instanceCount: 3, strategy: .leastLoaded)
        machine.commit(1)
        machine.commit(1)
        #expect(machine.select(where: { $0 != 0 && $0 != 2 }) == 1)
        #expect(machine.inFlight == [0, 3, 0])
    }

    @Test func releaseNeverGoesNegativeAndIgnoresUnknownIndices() {
        var machine = UpstreamBalancerStateMachine(instanceCount: 2, strategy: .roundRobin)
        machine.release(0)
        machine.release(7)
        machine.commit(-1)
        #expect(machine.inFlight == [0, 0])
    }

    @Test func shellSkipsInstancesWhoseBreakerIsOpen() {
        let now = FakeNow()
        let configuration = CircuitBreakerConfiguration(consecutiveFailureThreshold: 1, cooldown: .seconds(10))
        let a = CircuitBreaker(upstreamName: "a", configuration: configuration, now: now.closure)
        let b = CircuitBreaker(upstreamName: "b", configuration: configuration, now: now.closure)
        let balancer = UpstreamBalancer(instances: [.init(id: "a", breaker: a), .init(id: "b", breaker: b)])
        a.recordFailure(wasProbe: false)
        for _ in 0..<4 {
            let lease = balancer.acquire()
            #expect(lease?.id == "b")
            #expect(lease?.isProbe == false)
            if let lease { balancer.release(lease) }
        }
        #expect(balancer.inFlight() == ["a": 0, "b": 0])
    }

    @Test func shellReportsShortestWaitWhenAllBreakersAreOpen() {
        let now = FakeNow()
        let a = CircuitBreaker(
            upstreamName: "a",
            configuration: .init(consecutiveFailureThreshold: 1, cooldown: .seconds(10)),
            now: now.closure
        )
        let b = CircuitBreaker(
            upstreamName: "b",
            configuration: .init(consecutiveFailureThreshold: 1, cooldown: .seconds(4)),
            now: now.closure
        )
        let balancer = UpstreamBalancer(instances: [.init(id: "a", breaker: a), .init(id: "b", breaker: b)])
        a.recordFailure(wasProbe: false)
        b.recordFailure(wasProbe: false)
        now.advance(by: .seconds(1))
        guard case .unavailable(let retryAfter) = balancer.select() else {
            Issue.record("expected no instance")
            return
        }
        #expect(retryAfter == .seconds(3))
        #expect(balancer.acquire() == nil)

        now.advance(by: .seconds(3))
        let probe = balancer.acquire()
        #expect(probe?.id == "b")
        #expect(probe?.isProbe == true)
        #expect(probe?.breaker === b)
    }

    @Test func shellWithoutInstancesIsUnavailable() {
        let balancer = UpstreamBalancer(instances: [])
        guard case .unavailable(let retryAfter) = balancer.select() else {
            Issue.record("expected no instance")
            return
        }
        #expect(retryAfter == nil)
    }

    @Test func shellLeastLoadedTracksLeases() {
        let balancer = UpstreamBalancer(instances: [.init(id: "x"), .init(id: "y")], strategy: .leastLoaded)
        let first = balancer.acquire()
        let second = balancer.acquire()
        #expect(first?.id == "x")
        #expect(second?.id == "y")
        if let second { balancer.release(second) }
        #expect(balancer.acquire()?.id == "y")
        #expect(balancer.inFlight() == ["x": 1, "y": 1])
        #expect(balancer.instanceIDs == ["x", "y"])
    }
}
