extension Duration {
    /// This duration in nanoseconds as a `Double` (fractional nanoseconds kept, never traps).
    package var nanosecondsAsDouble: Double {
        Double(self.components.seconds) * 1e9 + Double(self.components.attoseconds) / 1e9
    }

    /// This duration in seconds as a `Double`.
    package var secondsAsDouble: Double {
        Double(self.components.seconds) + Double(self.components.attoseconds) / 1e18
    }

    /// This duration in whole nanoseconds, saturating at `Int64.min` / `Int64.max` instead of trapping.
    package var saturatingNanoseconds: Int64 {
        Duration.saturatingInt64(self.nanosecondsAsDouble.rounded(.towardZero))
    }

    /// A duration of `nanoseconds`, clamped to `0...Int64.max` nanoseconds; `NaN` gives zero.
    ///
    /// The clamp happens on the `Double` before conversion, so no input can trap the `Int64` initializer.
    package static func clampedNanoseconds(_ nanoseconds: Double) -> Duration {
        guard nanoseconds > 0 else { return .zero }  // also catches NaN
        return .nanoseconds(saturatingInt64(nanoseconds.rounded(.toNearestOrAwayFromZero)))
    }

    private static func saturatingInt64(_ value: Double) -> Int64 {
        // Double(Int64.max) is exactly 2^63, one more than Int64.max, so `>=` is the safe bound.
        if value.isNaN { return 0 }
        if value >= Double(Int64.max) { return .max }
        if value <= Double(Int64.min) { return .min }
        return Int64(value)
    }
}
