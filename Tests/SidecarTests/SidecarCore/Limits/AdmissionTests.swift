import Synchronization
import Testing

@testable import SidecarCore

@Suite struct AdmissionTests {
    @Test func aRequestRateRefillsContinuously() {
        let limiter = AppRateLimiter(limits: .init(appRates: ["billing": .init(requestsPerMinute: 2)]))
        let start = ContinuousClock.now
        #expect(limiter.admit(app: "billing", tokens: 10, now: start) == .admitted)
        #expect(limiter.admit(app: "billing", tokens: 10, now: start) == .admitted)
        guard case .limited(let what, let limit, let retryAfter) = limiter.admit(app: "billing", tokens: 10, now: start)
        else {
            Issue.record("the third request in a minute was admitted")
            return
        }
        #expect(what == "requests" && limit == 2)
        #expect(retryAfter == .seconds(30))  // one request comes back every 30 s
        #expect(limiter.admit(app: "billing", tokens: 10, now: start + .seconds(29)) != .admitted)
        #expect(limiter.admit(app: "billing", tokens: 10, now: start + .seconds(31)) == .admitted)
        // Other apps have no limit (no default rate).
        for _ in 0..<100 { #expect(limiter.admit(app: "web", tokens: 10, now: start) == .admitted) }
    }

    @Test func aTokenRateIsChargedOnArrivalAndCorrectedByUsage() {
        let limiter = AppRateLimiter(limits: .init(rate: .init(tokensPerMinute: 600)))
        let start = ContinuousClock.now
        // 600 a minute: a request of 500 estimated tokens fits, and one more while not in debt.
        #expect(limiter.admit(app: "a", tokens: 500, now: start) == .admitted)
        limiter.charge(app: "a", tokens: 50)  // the answer used more: 550 in all
        #expect(limiter.admit(app: "a", tokens: 500, now: start) == .admitted)  // level 50 -> -450
        guard case .limited(let what, _, let retryAfter) = limiter.admit(app: "a", tokens: 1, now: start) else {
            Issue.record("a bucket in debt admitted a request")
            return
        }
        #expect(what == "tokens")
        #expect(retryAfter == .milliseconds(45_100))  // 451 tokens at 10 a second
        // An estimate that was too high is given back.
        limiter.charge(app: "a", tokens: -460)
        #expect(limiter.admit(app: "a", tokens: 1, now: start) == .admitted)
        // Never more than a minute's worth.
        limiter.charge(app: "a", tokens: -1_000_000)
        #expect(limiter.admit(app: "a", tokens: 600, now: start) == .admitted)
        #expect(limiter.admit(app: "a", tokens: 1, now: start) != .admitted)
        // A reload changes the rate, not what was used.
        limiter.update(.init(rate: .init(tokensPerMinute: 0)))
        #expect(limiter.admit(app: "a", tokens: 1, now: start) == .admitted)
    }

    @Test func theGateAdmitsQueuesInOrderAndRefuses() {
        let gate = AdmissionGate(maxInFlight: 2, maxQueued: 2)
        let resumed = Mutex<[Int]>([])
        #expect(gate.enter { resumed.withLock { $0.append(1) } } == .admitted)
        #expect(gate.enter { resumed.withLock { $0.append(2) } } == .admitted)
        guard case .queued(let third) = gate.enter({ resumed.withLock { $0.append(3) } }),
            case .queued(let fourth) = gate.enter({ resumed.withLock { $0.append(4) } })
        else {
            Issue.record("the gate did not queue")
            return
        }
        #expect(gate.enter { resumed.withLock { $0.append(5) } } == .refused)
        #expect(gate.counts == (2, 2))
        // A slot given back goes to the first waiter.
        gate.leave()
        #expect(resumed.withLock { $0 } == [3])
        #expect(!gate.abandon(third))  // handed over already: it must leave in turn
        // A waiter that gives up leaves the queue and never gets a slot.
        #expect(gate.abandon(fourth))
        gate.leave()
        gate.leave()
        #expect(resumed.withLock { $0 } == [3])
        #expect(gate.counts == (0, 0))
        // Raising the bound admits waiters at once.
        let small = AdmissionGate(maxInFlight: 1, maxQueued: 5)
        #expect(small.enter {} == .admitted)
        for _ in 0..<3 { _ = small.enter { resumed.withLock { $0.append(9) } } }
        small.update(maxInFlight: 3, maxQueued: 5)
        #expect(resumed.withLock { $0 } == [3, 9, 9])
        #expect(small.counts == (3, 1))
        // No bound: everything is admitted.
        let open = AdmissionGate(maxInFlight: 0, maxQueued: 0)
        for _ in 0..<1000 { #expect(open.enter {} == .admitted) }
    }
}
