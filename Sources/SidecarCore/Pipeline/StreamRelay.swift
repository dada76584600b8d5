import Foundation
import NIOCore
import SidecarOpenAI
import SidecarPolicy

/// The tee on a streamed answer: passes SSE events through as they complete, reads `usage`
/// from the chunk that carries it, and drops that chunk when the client did not ask for it. It
/// counts the generated text as it passes, for an estimate when the upstream reports no usage;
/// a client that asked for usage then gets an estimated usage chunk before `[DONE]`.
///
/// A pure state machine: `feed` and `finish` return the bytes to send; the shell writes them.
struct StreamRelay {
    /// The usage chunk to add before `[DONE]` when the client asked for usage and the upstream
    /// sent none (llama.cpp's server ignores `stream_options.include_usage`).
    struct UsageFill {
        var id: String
        /// `chat.completion.chunk` or `text_completion`.
        var object: String
        var model: String
        var promptTokens: Int
        var created: Int
    }

    private var parser = ServerSentEventParser()
    private let dropUsageChunk: Bool
    private let usageFill: UsageFill?
    private(set) var usage: OpenAIUsage?
    private(set) var eventCount = 0
    private(set) var sawDone = false
    /// Bytes of generated text relayed (``GeneratedTextCounter``).
    private(set) var generatedBytes = 0
    /// The `data` of every event, for the cache (`nil` when not wanted or over the limit).
    private(set) var captured: [[UInt8]]?
    private var capturedBytes = 0
    private let captureLimit: Int
    /// The longest event held while it is incomplete. Past it (an upstream that never ends an
    /// event), the rest of the stream is relayed as it comes, unread and not cached, so memory
    /// stays bounded.
    static let eventLimit = 16 << 20
    private let eventLimit: Int
    /// An event went past ``eventLimit``: bytes are passed on as they come.
    private(set) var passingThrough = false

    /// - Parameters:
    ///   - dropUsageChunk: the sidecar added `include_usage`; hide the usage-only chunk.
    ///   - usageFill: the client asked for usage: what an estimated usage chunk says.
    ///   - captureLimit: keep each event's `data` (for the cache) up to this many bytes; 0: none.
    ///   - eventLimit: the longest incomplete event held (``eventLimit`` by default).
    init(dropUsageChunk: Bool, usageFill: UsageFill? = nil, captureLimit: Int = 0, eventLimit: Int = Self.eventLimit) {
        self.dropUsageChunk = dropUsageChunk
        self.usageFill = usageFill
        self.captureLimit = captureLimit
        self.eventLimit = eventLimit
        self.captured = captureLimit > 0 ? [] : nil
    }

    /// The bytes to relay for this upstream chunk (possibly empty while an event is incomplete).
    mutating func feed(_ chunk: ByteBuffer) -> ByteBuffer {
        guard !self.passingThrough else { return chunk }
        var out = self.relay(self.parser.feed(chunk))
        if self.parser.pendingByteCount > self.eventLimit, var held = self.parser.finish() {
            self.passingThrough = true
            self.captured = nil
            out.writeBuffer(&held)
        }
        return out
    }

    private mutating func relay(_ events: [ServerSentEvent]) -> ByteBuffer {
        guard !events.isEmpty else { return ByteBuffer() }
        // The usual chunk, one event passed on as it is: its bytes are a slice of the chunk.
        if events.count == 1, let event = events.first, self.take(event) == .relay { return event.raw }
        var out = ByteBuffer()
        for var event in events {
            switch self.take(event) {
            case .relay: out.writeBuffer(&event.raw)
            case .drop: break
            case .fillThenRelay(var estimated):
                out.writeBuffer(&estimated)
                out.writeBuffer(&event.raw)
            }
        }
        return out
    }

    private enum Verdict: Equatable {
        case relay
        case drop
        /// `[DONE]` with no usage seen by a client that asked for it: the estimate goes first.
        case fillThenRelay(ByteBuffer)
    }

    /// Counts, captures and reads one event, and says what to relay.
    private mutating func take(_ event: ServerSentEvent) -> Verdict {
        self.eventCount += 1
        let isDone = event.dataIs("[DONE]")
        if self.captured != nil, let data = event.dataBytes, !isDone {
            self.capturedBytes += data.readableBytes
            if self.capturedBytes > self.captureLimit {
                self.captured = nil
            } else {
                self.captured?.append(Array(data.readableBytesView))
            }
        }
        guard self.keep(event, isDone: isDone) else { return .drop }
        if isDone, self.usage == nil, let fill = self.usageFill {
            return .fillThenRelay(self.estimatedUsageChunk(fill))
        }
        return .relay
    }

    /// The bytes that end the relayed stream. Without `failure` (or after the upstream's own
    /// `[DONE]`): an unterminated last event, as it is. After an upstream failure: an error event
    /// and `[DONE]`, in place of the event the failure cut (dropped: half an event would reach
    /// the client as broken JSON, with the error glued to it); when that event's bytes already
    /// went out unread (past ``eventLimit``), a blank line ends it first.
    mutating func finish(failure: (message: String, code: String)? = nil) -> ByteBuffer? {
        let rest = self.parser.finish()
        guard let failure, !self.sawDone else { return rest }
        var out = ByteBuffer(string: self.passingThrough ? "\n\n" : "")
        var event = Self.errorEvent(message: failure.message, code: failure.code)
        out.writeBuffer(&event)
        return out
    }

    private mutating func keep(_ event: ServerSentEvent, isDone: Bool) -> Bool {
        guard let data = event.dataBytes else { return true }
        if isDone {
            self.sawDone = true
            return true
        }
        // Only chunks that mention usage need decoding.
        let mentionsUsage = data.withUnsafeReadableBytes { raw in
            let bytes = raw.assumingMemoryBound(to: UInt8.self)
            self.generatedBytes += GeneratedTextCounter.count(bytes)
            return Self.mentionsUsage(bytes)
        }
        guard mentionsUsage, let probe = OpenAIUsageProbe(data) else { return true }
        if let usage = probe.usage { self.usage = usage }
        return !(self.dropUsageChunk && probe.isUsageOnlyChunk)
    }

    /// Whether `data` holds `"usage"` (a byte search: Foundation's `contains` goes through
    /// `NSString` and was a quarter of the relay's CPU per chunk).
    static func mentionsUsage(_ data: String) -> Bool {
        var data = data
        return data.withUTF8 { Self.mentionsUsage($0) }
    }

    static func mentionsUsage(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
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

    /// The usage the stream reported, else an estimate from its prompt and the text relayed.
    func usage(estimatingPrompt promptTokens: () -> Int) -> (usage: OpenAIUsage, estimated: Bool) {
        if let usage = self.usage { return (usage, false) }
        let completion = TokenEstimate.tokens(forBytes: self.generatedBytes)
        return (OpenAIUsage(promptTokens: promptTokens(), completionTokens: completion), true)
    }

    private func estimatedUsageChunk(_ fill: UsageFill) -> ByteBuffer {
        let completion = TokenEstimate.tokens(forBytes: self.generatedBytes)
        var out = ByteBuffer(string: #"data: {"id":"#)
        out.writeBytes(JSONString.encode(fill.id))
        out.writeString(#","object":"#)
        out.writeBytes(JSONString.encode(fill.object))
        out.writeString(#","created":\#(fill.created),"model":"#)
        out.writeBytes(JSONString.encode(fill.model))
        out.writeString(
            #","choices":[],"usage":{"prompt_tokens":\#(fill.promptTokens),"completion_tokens":\#(completion),"#
                + #""total_tokens":\#(fill.promptTokens + completion)},"x_sidecar_usage_estimated":true}"#
                + "\n\n"
        )
        return out
    }

    /// An OpenAI-style error event and the end marker, for an upstream that fails mid-stream.
    private static func errorEvent(message: String, code: String) -> ByteBuffer {
        let body = OpenAIErrorBody(message: message, type: "upstream_error", code: code)
        var out = ByteBuffer(string: "data: ")
        var encoded = body.encoded()
        out.writeBuffer(&encoded)
        out.writeString("\n\ndata: [DONE]\n\n")
        return out
    }
}
