import Synchronization

/// Each model's recent time to the first byte, a moving average, for the `latency` strategy.
///
/// The record phase adds one sample per forwarded answer; the route phase reads. Shared by
/// every connection (one lock, held for a dictionary update).
public final class LatencyBoard: Sendable {
    /// The weight of a new sample.
    static let smoothing = 0.2
    private let seconds = Mutex<[String: Double]>([:])

    public init() {}

    public func record(model: String, seconds sample: Double) {
        guard sample.isFinite, sample >= 0 else { return }
        self.seconds.withLock { board in
            if let previous = board[model] {
                board[model] = previous + Self.smoothing * (sample - previous)
            } else {
                board[model] = sample
            }
        }
    }

    /// The model's average in seconds, `nil` until it has answered once.
    public func latency(of model: String) -> Double? {
        self.seconds.withLock { $0[model] }
    }

    /// Every measured model's average, for `/sidecar/route` and the stats.
    public var snapshot: [String: Double] {
        self.seconds.withLock { $0 }
    }
}
