/// Each model's recent time to the first byte, a moving average, for the `latency` strategy.
///
/// The record phase adds one sample per forwarded answer to its thread's part (no waiting on
/// the other event loops); a read averages the parts that have seen the model.
public final class LatencyBoard: Sendable {
    /// The weight of a new sample.
    static let smoothing = 0.2
    private let seconds = ThreadShards<[String: Double]> { [:] }

    public init() {}

    public func record(model: String, seconds sample: Double) {
        guard sample.isFinite, sample >= 0 else { return }
        self.seconds.withLocalLock { board in
            if let previous = board[model] {
                board[model] = previous + Self.smoothing * (sample - previous)
            } else {
                board[model] = sample
            }
        }
    }

    /// The model's average in seconds, `nil` until it has answered once.
    public func latency(of model: String) -> Double? {
        var total = 0.0
        var parts = 0
        self.seconds.withEachLock { board in
            if let value = board[model] {
                total += value
                parts += 1
            }
        }
        return parts > 0 ? total / Double(parts) : nil
    }

    /// Every measured model's average, for `/sidecar/stats`.
    public var snapshot: [String: Double] {
        var totals: [String: (sum: Double, parts: Int)] = [:]
        self.seconds.withEachLock { board in
            for (model, value) in board {
                totals[model, default: (0, 0)].sum += value
                totals[model, default: (0, 0)].parts += 1
            }
        }
        return totals.mapValues { $0.sum / Double($0.parts) }
    }
}
