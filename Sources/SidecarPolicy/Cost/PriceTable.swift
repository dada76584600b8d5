import Foundation

/// US-dollar prices per million tokens, by model id.
public struct PriceTable: Sendable, Equatable {
    public struct Price: Sendable, Equatable {
        public var inputUSDPerMTok: Decimal {
            didSet { self.inputPicoUSDPerToken = Self.picoUSDPerToken(self.inputUSDPerMTok) }
        }
        public var outputUSDPerMTok: Decimal {
            didSet { self.outputPicoUSDPerToken = Self.picoUSDPerToken(self.outputUSDPerMTok) }
        }
        /// The same prices in 10^-12 dollars per token, when that is an exact integer (prices
        /// with at most six decimals): the request path prices in integers then.
        private(set) var inputPicoUSDPerToken: Int64?
        private(set) var outputPicoUSDPerToken: Int64?

        public init(inputUSDPerMTok: Decimal, outputUSDPerMTok: Decimal) {
            self.inputUSDPerMTok = inputUSDPerMTok
            self.outputUSDPerMTok = outputUSDPerMTok
            self.inputPicoUSDPerToken = Self.picoUSDPerToken(inputUSDPerMTok)
            self.outputPicoUSDPerToken = Self.picoUSDPerToken(outputUSDPerMTok)
        }

        /// USD per million tokens x 10^6 = 10^-12 USD per token, if integral and in range.
        package static func picoUSDPerToken(_ usdPerMTok: Decimal) -> Int64? {
            var scaled = usdPerMTok * 1_000_000
            var integral = Decimal()
            NSDecimalRound(&integral, &scaled, 0, .plain)
            guard integral == scaled, scaled >= 0, scaled < Decimal(Int64(1) << 53) else { return nil }
            return NSDecimalNumber(decimal: scaled).int64Value
        }
    }

    private var prices: [String: Price]

    public init(prices: [String: Price]) {
        self.prices = prices
    }

    /// The prices of the configured models.
    public init(models: [ModelConfiguration]) {
        var prices: [String: Price] = [:]
        for model in models {
            prices[model.name] = Price(inputUSDPerMTok: model.inputUSDPerMTok, outputUSDPerMTok: model.outputUSDPerMTok)
        }
        self.init(prices: prices)
    }

    public func price(of model: String) -> Price? {
        self.prices[model]
    }
}
