import Foundation
import Testing

@testable import SidecarCore
@testable import SidecarOpenAI
@testable import SidecarPolicy

/// The integer path of ``CostCalculator/quote(model:usage:)`` must give exactly the text of the
/// decimal reference, for prices with up to six decimals and beyond (decimal fallback).
struct CostQuoteTests {
    static func calculator(_ input: String, _ output: String) -> CostCalculator {
        let price = PriceTable.Price(
            inputUSDPerMTok: Decimal(string: input) ?? 0,
            outputUSDPerMTok: Decimal(string: output) ?? 0
        )
        return CostCalculator(prices: PriceTable(prices: ["m": price]))
    }

    @Test func knownValues() throws {
        let calculator = Self.calculator("2.50", "10.00")
        let quote = try #require(
            calculator.quote(model: "m", usage: OpenAIUsage(promptTokens: 11, completionTokens: 7))
        )
        #expect(quote.header == "0.0000975")
        #expect(abs(quote.dollars - 0.0000975) < 1e-15)
        #expect(
            calculator.quote(model: "m", usage: OpenAIUsage(promptTokens: 1234, completionTokens: 567))?.header
                == "0.008755"
        )
        #expect(calculator.quote(model: "m", usage: OpenAIUsage(promptTokens: 0, completionTokens: 0))?.header == "0")
        #expect(calculator.quote(model: "unknown", usage: OpenAIUsage(promptTokens: 1, completionTokens: 1)) == nil)
        #expect(PriceTable.Price.picoUSDPerToken(Decimal(string: "2.5")!) == 2_500_000)
        #expect(PriceTable.Price.picoUSDPerToken(Decimal(string: "0.0000001")!) == nil)
    }

    @Test func integerPathMatchesTheDecimalReference() throws {
        let prices = [
            "0", "0.02", "0.15", "0.6", "2.50", "10", "15.00", "60", "0.000001", "1.234567", "75.5", "0.0000001",
            "3.1415926535",
        ]
        var generator = SystemRandomNumberGenerator()
        for input in prices {
            for output in prices {
                let calculator = Self.calculator(input, output)
                for _ in 0..<200 {
                    let usage = OpenAIUsage(
                        promptTokens: Int.random(in: 0...2_000_000, using: &generator),
                        completionTokens: Int.random(in: 0...200_000, using: &generator)
                    )
                    let reference = try #require(calculator.cost(model: "m", usage: usage))
                    let quote = try #require(calculator.quote(model: "m", usage: usage))
                    #expect(quote.header == CostCalculator.headerValue(reference), "\(input)/\(output) \(usage)")
                }
            }
        }
    }
}
