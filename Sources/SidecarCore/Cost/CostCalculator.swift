import Foundation

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
