import Foundation
import NIOCore
import SidecarOpenAI

/// The tee on a streamed answer: passes SSE events through as they complete, reads `usage`
/// from the chunk that carries it, and drops that chunk when the client did not ask for it.
///
/// A pure state machine: `feed` and `finish` return the bytes to send; the shell writes them.
struct StreamRelay {
    private var parser = ServerSentEventParser()
    private let dropUsageChunk: Bool
    private(set) var usage: OpenAIUsage?
    private(set) var eventCount = 0
    private(set) var sawDone = false

    /// - Parameter dropUsageChunk: the sidecar added `include_usage`; hide the usage-only chunk.
    init(dropUsageChunk: Bool) {
        self.dropUsageChunk = dropUsageChunk
    }

    /// The bytes to relay for this upstream chunk (possibly empty while an event is incomplete).
    mutating func feed(_ chunk: ByteBuffer) -> ByteBuffer {
        let events = self.parser.feed(chunk)
        guard !events.isEmpty else { return ByteBuffer() }
        var out = ByteBuffer()
        for var event in events {
            self.eventCount += 1
            if self.keep(event) {
                out.writeBuffer(&event.raw)
            }
        }
        return out
    }

    /// Bytes of an unterminated last event, relayed as they are.
    mutating func finish() -> ByteBuffer? {
        self.parser.finish()
    }

    private mutating func keep(_ event: ServerSentEvent) -> Bool {
        guard let data = event.data else { return true }
        if data == "[DONE]" {
            self.sawDone = true
            return true
        }
        // Only chunks that mention usage need decoding.
        guard Self.mentionsUsage(data) else { return true }
        guard let probe = OpenAIUsageProbe(ByteBuffer(string: data)) else { return true }
        if let usage = probe.usage { self.usage = usage }
        return !(self.dropUsageChunk && probe.isUsageOnlyChunk)
    }

    /// Whether `data` holds `"usage"` (a byte search: Foundation's `contains` goes through
    /// `NSString` and was a quarter of the relay's CPU per chunk).
    static func mentionsUsage(_ data: String) -> Bool {
        var data = data
        return data.withUTF8 { bytes in
            let quote = UInt8(ascii: "\"")
            var index = 0
            while index + 7 <= bytes.count {
                if bytes[index] == quote && bytes[index + 6] == quote && bytes[index + 1] == UInt8(ascii: "u")
                    && bytes[index + 2] == UInt8(ascii: "s") && bytes[index + 3] == UInt8(ascii: "a")
                    && bytes[index + 4] == UInt8(ascii: "g") && bytes[index + 5] == UInt8(ascii: "e")
                {
                    return true
                }
                index += 1
            }
            return false
        }
    }

    /// An OpenAI-style error event and the end marker, for an upstream that fails mid-stream.
    static func errorEvent(message: String, code: String) -> ByteBuffer {
        let body = OpenAIErrorBody(message: message, type: "upstream_error", code: code)
        var out = ByteBuffer(string: "data: ")
        var encoded = body.encoded()
        out.writeBuffer(&encoded)
        out.writeString("\n\ndata: [DONE]\n\n")
        return out
    }
}
