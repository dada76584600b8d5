import Synchronization
import Testing

@testable import SidecarPolicy

@Suite struct ConcurrencyLimiterTests {
    final class Log: Sendable {
        let granted = Mutex<[String]>([])
        func waiter(_ name: String) -> ConcurrencyLimiter.Waiter { { self.granted.withLock { $0.append(name) } } }
        var names: [String] { self.granted.withLock { $0 } }
    }

    @Test func grantsUpToTheLimitThenHandsPermitsOverFirstComeFirstServed() {
        let limiter = ConcurrencyLimiter(limits: ["llama": 1])
        let log = Log()
        #expect(limiter.acquire("llama", waiter: log.waiter("a")) == .granted)
        #expect(limiter.acquire("llama", waiter: log.waiter("b")) == .queued(ticket: 1))
        #expect(limiter.acquire("llama", waiter: log.waiter("c")) == .queued(ticket: 2))
        limiter.release("llama")
        #expect(log.names == ["b"])
        #expect(limiter.inFlight("llama") == 1)
        limiter.release("llama")
        limiter.release("llama")
        #expect(log.names == ["b", "c"])
        #expect(limiter.inFlight("llama") == 0)
    }

    @Test func aWaiterThatLeavesTheLineIsSkipped() {
        let limiter = ConcurrencyLimiter(limits: ["llama": 1])
        let log = Log()
        _ = limiter.acquire("llama", waiter: log.waiter("a"))
        guard case .queued(let ticket) = limiter.acquire("llama", waiter: log.waiter("b")) else {
            Issue.record("not queued")
            return
        }
        _ = limiter.acquire("llama", waiter: log.waiter("c"))
        #expect(limiter.cancel("llama", ticket: ticket))
        limiter.release("llama")
        #expect(log.names == ["c"])
        // A ticket whose permit was already handed over cannot leave any more.
        #expect(!limiter.cancel("llama", ticket: ticket))
    }

    @Test func upstreamsWithoutALimitNeverWait() {
        let limiter = ConcurrencyLimiter(limits: ["llama": 1, "cloud": 0])
        #expect(!limiter.isLimited("cloud"))
        #expect(!limiter.isLimited("other"))
        for _ in 0..<100 { #expect(limiter.acquire("cloud", waiter: {}) == .granted) }
    }
}
