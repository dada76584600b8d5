import NIOCore
import Testing

@testable import SidecarCore
@testable import SidecarOpenAI

@Suite struct ServerSentEventParserTests {
    static let stream =
        "data: {\"a\":1}\n\n" + ": comment\n\n" + "event: x\r\ndata: line1\r\ndata:line2\r\n\r\n"
        + "data: {\"b\":2}\r\r"
        + "data: [DONE]\n\n"

    static let expectedData: [String?] = ["{\"a\":1}", nil, "line1\nline2", "{\"b\":2}", "[DONE]"]

    static func parse(_ pieces: [String]) -> (events: [ServerSentEvent], rest: ByteBuffer?) {
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        for piece in pieces {
            events += parser.feed(ByteBuffer(string: piece))
        }
        return (events, parser.finish())
    }

    @Test func parsesEventsWithEveryLineEnding() {
        let (events, rest) = Self.parse([Self.stream])
        #expect(events.map(\.data) == Self.expectedData)
        #expect(rest == nil)
    }

    @Test func rawBytesOfEventsConcatenateToTheInput() {
        let (events, _) = Self.parse([Self.stream])
        let joined = events.map { String(buffer: $0.raw) }.joined()
        #expect(joined == Self.stream)
    }

    @Test func splittingAtEveryByteBoundaryGivesTheSameEvents() {
        let bytes = Array(Self.stream.utf8)
        for split in 0...bytes.count {
            let pieces = [
                String(decoding: bytes[..<split], as: UTF8.self), String(decoding: bytes[split...], as: UTF8.self),
            ]
            let (events, rest) = Self.parse(pieces)
            #expect(events.map(\.data) == Self.expectedData, "split at \(split)")
            #expect(events.map { String(buffer: $0.raw) }.joined() == Self.stream, "split at \(split)")
            #expect(rest == nil)
        }
    }

    @Test func feedingOneByteAtATimeGivesTheSameEvents() {
        let pieces = Self.stream.utf8.map { String(decoding: [$0], as: UTF8.self) }
        #expect(Self.parse(pieces).events.map(\.data) == Self.expectedData)
    }

    @Test func randomMultiSplitsGiveTheSameEvents() {
        var generator = SystemRandomNumberGenerator()
        let bytes = Array(Self.stream.utf8)
        for _ in 0..<200 {
            var cuts = (0..<5).map { _ in Int.random(in: 0...bytes.count, using: &generator) }.sorted()
            cuts = [0] + cuts + [bytes.count]
            let pieces = zip(cuts, cuts.dropFirst()).map { String(decoding: bytes[$0..<$1], as: UTF8.self) }
            #expect(Self.parse(pieces).events.map(\.data) == Self.expectedData, "cuts \(cuts)")
        }
    }

    @Test func unterminatedEventIsReturnedByFinish() {
        let (events, rest) = Self.parse(["data: a\n\ndata: partial"])
        #expect(events.map(\.data) == ["a"])
        #expect(rest.map { String(buffer: $0) } == "data: partial")
    }

    @Test func multiByteCharactersSplitAcrossChunksSurvive() {
        let text = "data: {\"t\":\"héllo wörld ✓\"}\n\n"
        let bytes = Array(text.utf8)
        for split in 1..<bytes.count {
            var parser = ServerSentEventParser()
            var events = parser.feed(ByteBuffer(bytes: bytes[..<split]))
            events += parser.feed(ByteBuffer(bytes: bytes[split...]))
            #expect(events.map(\.data) == ["{\"t\":\"héllo wörld ✓\"}"])
        }
    }
}
