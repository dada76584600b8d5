import Synchronization
import Testing

@testable import SidecarCore
@testable import SidecarPolicy

@Suite struct CircuitBreakerTests {
    @Test func shellRunsAFullCycleOnTheInjectedClock() {
        let now = FakeNow()
        let breaker = CircuitBreaker(
            upstreamName: "openai",
            configuration: .init(consecutiveFailureThreshold: 2, cooldown: .seconds(5)),
            now: now.closure
        )
        #expect(breaker.upstreamName == "openai")
        #expect(breaker.admit() == .allowed)
        #expect(breaker.recordFailure(wasProbe: false) == nil)
        #expect(breaker.recordFailure(wasProbe: false)?.to == .open)
        #expect(breaker.state == .open)
        #expect(breaker.admit() == .rejected(retryAfter: .seconds(5)))

        now.advance(by: .seconds(5))
        #expect(breaker.state == .halfOpen)
        let probe = breaker.admit()
        #expect(probe == .allowedAsProbe)
        #expect(probe.isProbe)
        #expect(breaker.recordSuccess(wasProbe: probe.isProbe)?.to == .closed)
        #expect(breaker.state == .closed)
    }

    @Test func reportsEveryTransitionToTheCallback() {
        let now = FakeNow()
        let seen = Mutex<[CircuitBreakerTransition]>([])
        let breaker = CircuitBreaker(
            upstreamName: "ollama",
            configuration: .init(consecutiveFailureThreshold: 1, cooldown: .seconds(1)),
            now: now.closure,
            onTransition: { transition in seen.withLock { $0.append(transition) } }
        )
        breaker.recordFailure(wasProbe: false)
        now.advance(by: .seconds(1))
        _ = breaker.admit()
        breaker.recordFailure(wasProbe: true)
        now.advance(by: .seconds(1))
        _ = breaker.admit()
        breaker.recordSuccess(wasProbe: true)
        let reasons = seen.withLock { $0.map(\.reason) }
        #expect(reasons == [.consecutiveFailures, .cooldownElapsed, .probeFailed, .cooldownElapsed, .probesSucceeded])
    }

    @Test func concurrentCallersNeverGetMoreThanOneProbe() async {
        let now = FakeNow()
        let breaker = CircuitBreaker(
            upstreamName: "openai",
            configuration: .init(consecutiveFailureThreshold: 1, cooldown: .seconds(1)),
            now: now.closure
        )
        breaker.recordFailure(wasProbe: false)
        now.advance(by: .seconds(1))
        let probes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<100 {
                group.addTask { breaker.admit().isProbe }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(probes == 1)
    }
}
