import Testing

@testable import SidecarCore
@testable import SidecarHTTP

struct RequestIDGeneratorTests {
    @Test func idsAre32LowerCaseHexDigitsAndDistinct() {
        var generator = RequestIDGenerator()
        var seen = Set<String>()
        var digitsSeen = Set<Character>()
        for _ in 0..<10_000 {
            let id = generator.next()
            #expect(id.utf8.count == 32)
            #expect(id.allSatisfy { "0123456789abcdef".contains($0) })
            digitsSeen.formUnion(id)
            seen.insert(id)
        }
        #expect(seen.count == 10_000)
        #expect(digitsSeen.count == 16)
    }
}
