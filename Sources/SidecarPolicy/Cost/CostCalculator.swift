import Foundation
import SidecarOpenAI

/// Prices one answer: usage x price, exact in decimal arithmetic.
public struct CostCalculator: Sendable {
    public let prices: PriceTable

    public init(prices: PriceTable) {
        self.prices = prices
    }

    /// The cost in US dollars, or `nil` when the model has no price (an unknown pinned model).
    public func cost(model: String, usage: OpenAIUsage) -> Decimal? {
        guard let price = self.prices.price(of: model) else { return nil }
        let input = Decimal(usage.promptTokens) * price.inputUSDPerMTok
        let output = Decimal(usage.completionTokens) * price.outputUSDPerMTok
        return (input + output) / 1_000_000
    }

    /// The cost as the request path needs it: the header text and dollars for metrics. Computed
    /// in integer picodollars when the prices allow it (the same value and text as
    /// ``cost(model:usage:)`` and ``headerValue(_:)``, without decimal arithmetic).
    package func quote(model: String, usage: OpenAIUsage) -> CostQuote? {
        guard let price = self.prices.price(of: model) else { return nil }
        if let input = price.inputPicoUSDPerToken, let output = price.outputPicoUSDPerToken,
            usage.promptTokens >= 0, usage.completionTokens >= 0
        {
            let (inputCost, inputOverflow) = Int64(usage.promptTokens).multipliedReportingOverflow(by: input)
            let (outputCost, outputOverflow) = Int64(usage.completionTokens).multipliedReportingOverflow(by: output)
            let (total, totalOverflow) = inputCost.addingReportingOverflow(outputCost)
            if !inputOverflow && !outputOverflow && !totalOverflow {
                return CostQuote(header: Self.headerValue(picodollars: total), dollars: Double(total) / 1e12)
            }
        }
        guard let exact = self.cost(model: model, usage: usage) else { return nil }
        return CostQuote(header: Self.headerValue(exact), dollars: NSDecimalNumber(decimal: exact).doubleValue)
    }

    /// ``headerValue(_:)`` for a non-negative amount in 10^-12 dollars: rounded half up to 10
    /// decimals, trailing zeros dropped.
    package static func headerValue(picodollars: Int64) -> String {
        // 10 decimals = units of 100 picodollars.
        let units = picodollars / 100 + (picodollars % 100 >= 50 ? 1 : 0)
        guard units > 0 else { return "0" }  // no answer costs less than nothing
        // The digits right to left into a small buffer: one string made, no intermediate ones.
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { buffer in
            var position = 32
            var fraction = units % 10_000_000_000
            var whole = units / 10_000_000_000
            if fraction != 0 {
                var digits = 10
                while fraction % 10 == 0 {
                    fraction /= 10
                    digits -= 1
                }
                for _ in 0..<digits {
                    position -= 1
                    buffer[position] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: fraction % 10)
                    fraction /= 10
                }
                position -= 1
                buffer[position] = UInt8(ascii: ".")
            }
            repeat {
                position -= 1
                buffer[position] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: whole % 10)
                whole /= 10
            } while whole > 0
            return String(decoding: UnsafeBufferPointer(rebasing: buffer[position..<32]), as: UTF8.self)
        }
    }

    /// Formats dollars as a plain decimal for `X-Query-Cost`: `0.000315`, `0`, never exponents;
    /// rounded to 10 decimal places (a ten-thousandth of a micro-dollar).
    public static func headerValue(_ dollars: Decimal) -> String {
        var value = dollars
        var rounded = Decimal()
        NSDecimalRound(&rounded, &value, 10, .plain)
        if rounded.isZero { return "0" }
        let text = NSDecimalNumber(decimal: rounded).stringValue
        guard text.contains("e") || text.contains("E") else { return text }
        // Fall back to fixed notation if Foundation ever prints an exponent.
        return String(format: "%.10f", NSDecimalNumber(decimal: rounded).doubleValue)
            .replacingOccurrences(of: #"\.?0+$"#, with: "", options: .regularExpression)
    }
}

/// A priced answer: the `X-Query-Cost` text and the amount for metrics.
package struct CostQuote: Sendable, Equatable {
    package var header: String
    package var dollars: Double
    /// Priced from estimated token counts (the upstream reported no usage).
    package var estimated = false
    /// The token counts it was priced from (for the access log).
    package var promptTokens: Int?
    package var completionTokens: Int?

    package static let zero = CostQuote(header: "0", dollars: 0)
}
