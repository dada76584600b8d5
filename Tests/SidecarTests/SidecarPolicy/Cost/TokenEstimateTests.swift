import Testing

@testable import SidecarPolicy

@Suite struct TokenEstimateTests {
    @Test func fourBytesATokenRoundedUp() {
        #expect(TokenEstimate.tokens(forBytes: 0) == 0)
        #expect(TokenEstimate.tokens(forBytes: 1) == 1)
        #expect(TokenEstimate.tokens(forBytes: 8) == 2)
        #expect(TokenEstimate.tokens(forBytes: 9) == 3)
    }

    @Test func chatMessagesCostTheirFramingAndTheReplyPriming() {
        #expect(TokenEstimate.promptTokens(textBytes: 40, messageCount: 2) == 10 + 8 + 3)
        #expect(TokenEstimate.promptTokens(textBytes: 40, messageCount: 0) == 10)
    }
}
