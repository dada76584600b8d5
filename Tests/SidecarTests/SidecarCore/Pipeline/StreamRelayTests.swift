import Foundation
import NIOCore
import Testing

@testable import SidecarCore
@testable import SidecarOpenAI

struct StreamRelayTests {
    @Test func mentionsUsageAgreesWithASubstringSearch() {
        var generator = SystemRandomNumberGenerator()
        let pieces = ["\"usage\"", "\"usag", "usage\"", "\"", "u", "sage", "{", "é", " ", "\"use\"", "x"]
        for _ in 0..<3000 {
            let count = Int.random(in: 0...8, using: &generator)
            let text = (0..<count).map { _ in pieces.randomElement(using: &generator) ?? "" }.joined()
            #expect(StreamRelay.mentionsUsage(text) == text.contains("\"usage\""), "\(text)")
        }
    }

    @Test func theUsageOnlyChunkIsReadAndDroppedWhenTheSidecarAskedForIt() {
        var relay = StreamRelay(dropUsageChunk: true)
        let stream =
            #"data: {"choices":[{"delta":{"content":"hi"}}]}"# + "\n\n"
            + #"data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"# + "\n\n"
            + "data: [DONE]\n\n"
        let out = relay.feed(ByteBuffer(string: stream))
        #expect(String(buffer: out) == #"data: {"choices":[{"delta":{"content":"hi"}}]}"# + "\n\ndata: [DONE]\n\n")
        #expect(relay.usage == OpenAIUsage(promptTokens: 3, completionTokens: 4))
        #expect(relay.sawDone)
    }
}
