import Foundation
import Testing

@testable import SidecarCore
@testable import SidecarPolicy

@Suite struct CostCalculatorTests {
    let calculator = CostCalculator(
        prices: PriceTable(prices: [
            "gpt-4o": .init(inputUSDPerMTok: Decimal(string: "2.50")!, outputUSDPerMTok: 10),
            "mini": .init(inputUSDPerMTok: Decimal(string: "0.15")!, outputUSDPerMTok: Decimal(string: "0.60")!),
            "free": .init(inputUSDPerMTok: 0, outputUSDPerMTok: 0),
        ])
    )

    @Test func costIsUsageTimesPriceExactly() throws {
        let cost = try #require(
            calculator.cost(model: "gpt-4o", usage: .init(promptTokens: 1234, completionTokens: 567))
        )
        // 1234 * 2.5 + 567 * 10 = 3085 + 5670 = 8755 micro-dollars
        #expect(cost == Decimal(string: "0.008755")!)
        #expect(CostCalculator.headerValue(cost) == "0.008755")
    }

    @Test func fractionalMicroDollarsAreKept() throws {
        let cost = try #require(calculator.cost(model: "mini", usage: .init(promptTokens: 1, completionTokens: 1)))
        #expect(CostCalculator.headerValue(cost) == "0.00000075")
    }

    @Test func freeModelsCostZero() throws {
        let cost = try #require(calculator.cost(model: "free", usage: .init(promptTokens: 99, completionTokens: 99)))
        #expect(CostCalculator.headerValue(cost) == "0")
    }

    @Test func unknownModelHasNoPrice() {
        #expect(calculator.cost(model: "nope", usage: .init(promptTokens: 1, completionTokens: 1)) == nil)
    }

    @Test func largeCostsPrintWithoutExponent() {
        #expect(CostCalculator.headerValue(Decimal(string: "12345.678")!) == "12345.678")
        #expect(CostCalculator.headerValue(Decimal(string: "0.0000000001")!) == "0.0000000001")
    }
}
