import Foundation

/// US-dollar prices per million tokens, by model id.
public struct PriceTable: Sendable, Equatable {
    public struct Price: Sendable, Equatable {
        public var inputUSDPerMTok: Decimal
        public var outputUSDPerMTok: Decimal

        public init(inputUSDPerMTok: Decimal, outputUSDPerMTok: Decimal) {
            self.inputUSDPerMTok = inputUSDPerMTok
            self.outputUSDPerMTok = outputUSDPerMTok
        }
    }

    private var prices: [String: Price]

    public init(prices: [String: Price]) {
        self.prices = prices
    }

    public init(configuration: SidecarConfiguration) {
        var prices: [String: Price] = [:]
        for model in configuration.models {
            prices[model.name] = Price(inputUSDPerMTok: model.inputUSDPerMTok, outputUSDPerMTok: model.outputUSDPerMTok)
        }
        self.init(prices: prices)
    }

    public func price(of model: String) -> Price? {
        self.prices[model]
    }
}
