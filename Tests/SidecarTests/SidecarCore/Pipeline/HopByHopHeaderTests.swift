import Testing

@testable import SidecarCore

@Suite struct HopByHopHeaderTests {
    @Test func theHopByHopCheckAgreesWithTheListInAnyCase() {
        for name in SidecarHeaders.hopByHop {
            #expect(SidecarHeaders.isHopByHop(name))
            #expect(SidecarHeaders.isHopByHop(name.uppercased()))
        }
        for other in [
            "content-type", "authorization", "x-request-id", "user-agent", "accept", "connectio", "hosts", "",
        ] {
            #expect(!SidecarHeaders.isHopByHop(other), "\(other)")
        }
    }
}
