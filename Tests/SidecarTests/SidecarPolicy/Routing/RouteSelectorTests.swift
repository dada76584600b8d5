import Testing

@testable import SidecarCore
@testable import SidecarPolicy

@Suite struct RouteSelectorTests {
    static func selector(mode: String = "all") throws -> RouteSelector {
        RouteSelector(configuration: try SidecarHarness.configuration(port: 1, routing: "mode = \"\(mode)\""))
    }

    static let low = ComplexityScore(value: 0.1, features: [])
    static let high = ComplexityScore(value: 0.9, features: [])

    @Test func everyRequestIsRoutedByDefault() throws {
        let selector = try Self.selector()
        #expect(selector.select(requestedModel: "gpt-4o", pinHeader: false, score: Self.low).model == "small-local")
        #expect(selector.select(requestedModel: "gpt-4o", pinHeader: false, score: Self.high).model == "big-cloud")
        #expect(selector.select(requestedModel: nil, pinHeader: false, score: Self.high).upstream == "cloud")
    }

    @Test func tierBoundaryGoesToTheNextTier() throws {
        let selector = try Self.selector()
        let decision = selector.select(requestedModel: "x", pinHeader: false, score: .init(value: 0.40, features: []))
        #expect(decision.model == "big-cloud")
        #expect(decision.reason == .tier(1))
    }

    @Test func pinHeaderKeepsTheRequestedModel() throws {
        let decision = try Self.selector().select(requestedModel: "big-cloud", pinHeader: true, score: Self.low)
        #expect(decision.model == "big-cloud")
        #expect(decision.upstream == "cloud")
        #expect(decision.reason == .pinned)
    }

    @Test func pinPrefixIsStripped() throws {
        let decision = try Self.selector().select(requestedModel: "pin/small-local", pinHeader: false, score: Self.high)
        #expect(decision.model == "small-local")
        #expect(decision.reason == .pinned)
    }

    @Test func unknownPinnedModelGoesToTheDefaultUpstream() throws {
        let decision = try Self.selector().select(requestedModel: "pin/mystery", pinHeader: false, score: Self.high)
        #expect(decision.model == "mystery")
        #expect(decision.upstream == "ollama")
    }

    @Test func autoAliasAlwaysRoutesEvenWhenPinnedOrAutoOnly() throws {
        #expect(
            try Self.selector().select(requestedModel: "auto", pinHeader: true, score: Self.high).model == "big-cloud"
        )
        let autoOnly = try Self.selector(mode: "auto_only")
        #expect(autoOnly.select(requestedModel: "auto", pinHeader: false, score: Self.low).model == "small-local")
        let passthrough = autoOnly.select(requestedModel: "gpt-4o", pinHeader: false, score: Self.low)
        #expect(passthrough.model == "gpt-4o")
        #expect(passthrough.reason == .passthrough)
    }
}
