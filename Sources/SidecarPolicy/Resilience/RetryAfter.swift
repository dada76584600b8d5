import Foundation

/// Parsing of the `Retry-After` response header (RFC 9110 section 10.2.3) and of the
/// non-standard `retry-after-ms` header some LLM APIs send (OpenAI, Azure OpenAI).
///
/// Results are durations from `now`, never negative: a date in the past or a negative number gives
/// `.zero`. Garbage gives `nil` (treat it as "no header"). Results are clamped to `maximum` so a
/// huge value cannot overflow; whether a long wait is acceptable is `RetryPolicy`'s decision, so
/// pass a `maximum` above `RetryPolicy.maxRetryAfter` (the default, one day, is) or a too-long
/// wait becomes indistinguishable from an acceptable one.
///
/// When a response carries both, prefer `retry-after-ms` (it is more precise).
///
/// ```swift
/// RetryAfter.parse("120", now: Date())                               // 120 s
/// RetryAfter.parse("Wed, 21 Oct 2015 07:28:00 GMT", now: Date())     // time until then, or .zero
/// RetryAfter.parseMilliseconds("1500")                               // 1.5 s
/// ```
public enum RetryAfter {
    /// The default clamp: one day.
    public static let defaultMaximum: Duration = .seconds(86_400)

    /// Parses a `Retry-After` value: delta-seconds (`120`; decimals like `1.5` and a leading `-`
    /// are tolerated) or an HTTP-date in any of the three RFC 9110 formats.
    ///
    /// - Parameters:
    ///   - value: the header value; surrounding spaces and tabs are ignored.
    ///   - now: the current wall-clock time, for HTTP-dates.
    ///   - maximum: the largest duration returned.
    /// - Returns: the wait, in `0...maximum`, or `nil` if the value is neither form.
    public static func parse(_ value: some StringProtocol, now: Date, maximum: Duration = defaultMaximum) -> Duration? {
        let trimmed = self.trimmed(value)
        guard !trimmed.isEmpty else { return nil }
        if let seconds = self.decimal(trimmed) {
            return self.clamp(seconds: seconds, maximum: maximum)
        }
        guard let date = HTTPDate.parse(trimmed, now: now) else { return nil }
        return self.clamp(seconds: date.timeIntervalSince(now), maximum: maximum)
    }

    /// Parses a `retry-after-ms` value: a number of milliseconds (decimals and a leading `-` tolerated).
    ///
    /// - Returns: the wait, in `0...maximum`, or `nil` if the value is not a number.
    public static func parseMilliseconds(
        _ value: some StringProtocol,
        maximum: Duration = defaultMaximum
    ) -> Duration? {
        guard let milliseconds = self.decimal(self.trimmed(value)) else { return nil }
        return self.clamp(seconds: milliseconds / 1_000, maximum: maximum)
    }

    private static func clamp(seconds: Double, maximum: Duration) -> Duration {
        let maximumSeconds = max(0, maximum.secondsAsDouble)
        guard seconds > 0 else { return .zero }  // past, zero, negative
        guard seconds < maximumSeconds else { return max(.zero, maximum) }
        return Duration.clampedNanoseconds(seconds * 1e9)
    }

    private static func trimmed(_ value: some StringProtocol) -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        let text = Substring(value)
        guard let first = text.firstIndex(where: { !isSpace($0) }),
            let last = text.lastIndex(where: { !isSpace($0) })
        else { return "" }
        return text[first...last]
    }

    /// `-?DIGITS(.DIGITS)?` as a `Double`; anything else (exponents, `inf`, `+`, hex) is `nil`.
    private static func decimal(_ text: Substring) -> Double? {
        var bytes = text.utf8[...]
        var sign = 1.0
        if bytes.first == UInt8(ascii: "-") {
            sign = -1
            bytes = bytes.dropFirst()
        }
        var value = 0.0
        var integerDigits = 0
        while let byte = bytes.first, let digit = self.digit(byte) {
            value = value * 10 + digit
            integerDigits += 1
            bytes = bytes.dropFirst()
        }
        guard integerDigits > 0 else { return nil }
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            var divisor = 1.0
            while let byte = bytes.first, let digit = self.digit(byte) {
                value = value * 10 + digit
                divisor *= 10
                bytes = bytes.dropFirst()
            }
            guard divisor > 1 else { return nil }  // "1." has no fraction digits
            value /= divisor
        }
        // A huge value may be +infinity (clamp() caps it); absurdly many fraction digits give NaN.
        guard bytes.isEmpty, !value.isNaN else { return nil }
        return sign * value
    }

    private static func digit(_ byte: UInt8) -> Double? {
        guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
        return Double(byte - UInt8(ascii: "0"))
    }
}
