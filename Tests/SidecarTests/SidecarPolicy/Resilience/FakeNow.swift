import Synchronization

/// A manual time source for resilience tests: starts at a fixed instant and moves only when told.
final class FakeNow: Sendable {
    let start: ContinuousClock.Instant
    private let current: Mutex<ContinuousClock.Instant>

    init() {
        let start = ContinuousClock.now
        self.start = start
        self.current = Mutex(start)
    }

    var instant: ContinuousClock.Instant { self.current.withLock { $0 } }

    /// A closure to hand to the type under test.
    var closure: @Sendable () -> ContinuousClock.Instant { { self.instant } }

    func advance(by duration: Duration) {
        self.current.withLock { $0 = $0.advanced(by: duration) }
    }
}
