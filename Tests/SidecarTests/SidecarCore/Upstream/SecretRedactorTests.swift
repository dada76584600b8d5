import NIOCore
import Testing

@testable import SidecarCore

/// The upstreams' keys never reach a client in a failed answer: whole, or relayed in chunks
/// cut anywhere (a key split between two chunks included).
struct SecretRedactorTests {
    static let keys = ["sk-live-0123456789abcdef", "sk-live-0123", "ollama-key-XYZ"]

    @Test func replacesEveryKeyByAsManyStars() {
        let redactor = SecretRedactor(secrets: Self.keys + [""])
        let text = "Incorrect API key provided: sk-live-0123456789abcdef. Also sk-live-0123 and ollama-key-XYZ!"
        let redacted = redactor.redact(text)
        #expect(redacted.utf8.count == text.utf8.count)
        #expect(
            redacted
                == "Incorrect API key provided: \(String(repeating: "*", count: 24)). Also "
                + "\(String(repeating: "*", count: 12)) and \(String(repeating: "*", count: 14))!"
        )
        #expect(redactor.redact("nothing secret") == "nothing secret")
        #expect(SecretRedactor(secrets: []).isEmpty)
    }

    @Test func aStreamCutAnywhereGivesTheWholeRedaction() {
        let redactor = SecretRedactor(secrets: Self.keys)
        var random = SplitMix64(seed: 0x5EC)
        let pieces = Self.keys + ["sk-", "sk-live-", "ollama", " ", "error: ", "{\"message\":\"", "x", "\n"]
        for _ in 0..<500 {
            var body: [UInt8] = []
            for _ in 0..<Int.random(in: 0...12, using: &random) {
                body += Array((pieces.randomElement(using: &random) ?? "x").utf8)
            }
            let whole = redactor.redact(ByteBuffer(bytes: body))
            var stream = SecretRedactor.Stream(redactor)
            var relayed: [UInt8] = []
            var start = 0
            while start < body.count {
                let end = min(body.count, start + Int.random(in: 1...9, using: &random))
                relayed += Array(buffer: stream.next(ByteBuffer(bytes: body[start..<end])))
                start = end
            }
            relayed += Array(buffer: stream.finish())
            #expect(relayed == Array(buffer: whole))
            for key in Self.keys { #expect(!String(decoding: relayed, as: UTF8.self).contains(key)) }
        }
    }
}
