import Synchronization

/// Whether the sidecar can take traffic: configuration loaded and listener up.
public final class ReadinessState: Sendable {
    private let listening = Atomic<Bool>(false)

    public init() {}

    public var isReady: Bool { self.listening.load(ordering: .acquiring) }

    func markListening() {
        self.listening.store(true, ordering: .releasing)
    }
}
