/// Two event counters over a sliding time window, kept in a ring of fixed-width buckets.
///
/// Time is split into buckets of `window / bucketCount`, numbered from the first recorded event.
/// The totals cover the current bucket and the `bucketCount - 1` before it, so an event stops
/// counting between `window - bucketWidth` and `window` after it was recorded. Pure value type:
/// the caller passes `now` on every call. Events older than the ring are dropped.
package struct SlidingWindowCounter: Sendable, Hashable {
    /// The sum of the two counters over the window.
    package struct Totals: Sendable, Hashable {
        package var first: Int
        package var second: Int
    }

    private struct Bucket: Sendable, Hashable {
        /// Bucket number since `origin`; `-1` marks an empty slot.
        var index: Int64 = -1
        var first: Int = 0
        var second: Int = 0
    }

    /// Width of one bucket in nanoseconds (at least 1).
    package let bucketNanoseconds: Int64
    private var buckets: [Bucket]
    private var origin: ContinuousClock.Instant?

    /// Creates an empty counter; `window` is clamped to at least 1 ns and `bucketCount` to at least 1.
    package init(window: Duration, bucketCount: Int) {
        let count = max(1, bucketCount)
        let windowNanoseconds = max(1, window.saturatingNanoseconds)
        self.bucketNanoseconds = max(1, windowNanoseconds / Int64(count))
        self.buckets = Array(repeating: Bucket(), count: count)
        self.origin = nil
    }

    /// Adds `first` and `second` to the bucket that holds `now`.
    package mutating func add(first: Int = 0, second: Int = 0, now: ContinuousClock.Instant) {
        if self.origin == nil { self.origin = now }
        let index = self.bucketIndex(now)
        let slot = Int(index % Int64(self.buckets.count))
        if self.buckets[slot].index > index {
            return  // older than the whole ring: outside the window already
        }
        if self.buckets[slot].index < index {
            self.buckets[slot] = Bucket(index: index, first: 0, second: 0)
        }
        self.buckets[slot].first += first
        self.buckets[slot].second += second
    }

    /// The counters summed over the buckets still inside the window at `now`.
    package func totals(now: ContinuousClock.Instant) -> Totals {
        guard self.origin != nil else { return Totals(first: 0, second: 0) }
        let current = self.bucketIndex(now)
        let oldest = current - Int64(self.buckets.count) + 1
        var totals = Totals(first: 0, second: 0)
        for bucket in self.buckets where bucket.index >= oldest && bucket.index <= current {
            totals.first += bucket.first
            totals.second += bucket.second
        }
        return totals
    }

    /// Forgets every event.
    package mutating func reset() {
        for slot in self.buckets.indices {
            self.buckets[slot] = Bucket()
        }
        self.origin = nil
    }

    private func bucketIndex(_ now: ContinuousClock.Instant) -> Int64 {
        guard let origin = self.origin else { return 0 }
        let elapsed = origin.duration(to: now).saturatingNanoseconds
        return max(0, elapsed) / self.bucketNanoseconds
    }
}
