import Foundation

/// `[[models]]`: a model id, the upstream(s) serving it, its price and its fallbacks.
public struct ModelConfiguration: Sendable, Equatable {
    /// The id sent upstream and reported in `X-Model-Used`.
    public var name: String
    /// Upstreams serving this model, balanced by `balance`; usually one.
    public var upstreams: [String]
    public var inputUSDPerMTok: Decimal
    public var outputUSDPerMTok: Decimal
    /// Models tried in order when this one's upstreams fail or their breakers are open.
    public var fallbacks: [String]
    public var balance: UpstreamBalancerStateMachine.Strategy

    /// The first (primary) upstream.
    public var upstream: String { self.upstreams.first ?? "" }

    public init(
        name: String,
        upstream: String,
        inputUSDPerMTok: Decimal = 0,
        outputUSDPerMTok: Decimal = 0,
        fallbacks: [String] = []
    ) {
        self.init(
            name: name,
            upstreams: [upstream],
            inputUSDPerMTok: inputUSDPerMTok,
            outputUSDPerMTok: outputUSDPerMTok,
            fallbacks: fallbacks
        )
    }

    public init(
        name: String,
        upstreams: [String],
        inputUSDPerMTok: Decimal = 0,
        outputUSDPerMTok: Decimal = 0,
        fallbacks: [String] = [],
        balance: UpstreamBalancerStateMachine.Strategy = .roundRobin
    ) {
        self.name = name
        self.upstreams = upstreams
        self.inputUSDPerMTok = inputUSDPerMTok
        self.outputUSDPerMTok = outputUSDPerMTok
        self.fallbacks = fallbacks
        self.balance = balance
    }
}
