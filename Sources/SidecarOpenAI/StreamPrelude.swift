import NIOCore

/// Tells whether a streamed completion has said anything yet: its first events often carry
/// nothing but the assistant's role (OpenAI, llama.cpp and Ollama open with
/// `"delta": {"role": "assistant", "content": ""}`; Azure with an empty `choices` and its
/// prompt-filter results). Holding those until the first event that says something lets an
/// upstream that stalls or drops the connection right after them be retried, since the client has
/// received nothing yet.
///
/// An event is a prelude when its data is an object whose `choices` is an array of choices with
/// nothing in them but an `index`, a `delta` holding only a `role` and an empty or `null`
/// `content` (or `refusal`), an empty `text`, and `null` `logprobs` and `finish_reason`; with no
/// `usage` and no `error`. Anything else ends the prelude: content, a tool call, a finish reason,
/// usage, `[DONE]`, an error, a comment (a keep-alive the client may be waiting for), a payload
/// that is not such an object.
package struct StreamPrelude: Sendable {
    package enum Verdict: Equatable, Sendable {
        /// Every complete event so far is a prelude (an incomplete one may follow).
        case hold
        /// An event that says something has arrived (or the prelude grew past its limit).
        case commit
    }

    /// Past this many bytes of prelude the stream is committed anyway.
    package static let byteLimit = 1 << 16

    private var parser = ServerSentEventParser()
    private var bytes = 0

    package init() {}

    /// Feeds the next chunk of the stream.
    package mutating func feed(_ chunk: ByteBuffer) -> Verdict {
        self.bytes += chunk.readableBytes
        if self.bytes > Self.byteLimit { return .commit }
        for event in self.parser.feed(chunk) {
            guard let data = event.dataBytes, data.withUnsafeReadableBytes({ Self.isPrelude($0) }) else {
                return .commit
            }
        }
        return .hold
    }

    /// Whether one event's `data` says nothing yet.
    package static func isPrelude(_ data: String) -> Bool {
        var data = data
        return data.withUTF8 { Self.isPrelude(UnsafeRawBufferPointer($0)) }
    }

    static func isPrelude(_ data: UnsafeRawBufferPointer) -> Bool {
        let bytes = data.assumingMemoryBound(to: UInt8.self)
        var choices = false
        var quiet = true
        let isObject = JSONObjectScanner.forEachMember(bytes) { key, _, value in
            let value = UnsafeBufferPointer(rebasing: bytes[value])
            switch Self.name(key) {
            case "choices":
                choices = JSONObjectScanner.forEachElement(value) { choice in
                    quiet = quiet && Self.isQuietChoice(UnsafeBufferPointer(rebasing: value[choice]))
                }
            case "usage", "error": quiet = quiet && Self.is(value, "null")
            default: break
            }
        }
        return isObject && choices && quiet
    }

    private static func isQuietChoice(_ choice: UnsafeBufferPointer<UInt8>) -> Bool {
        var quiet = true
        let isObject = JSONObjectScanner.forEachMember(choice) { key, _, value in
            let value = UnsafeBufferPointer(rebasing: choice[value])
            switch Self.name(key) {
            case "index": break
            case "logprobs", "finish_reason": quiet = quiet && Self.is(value, "null")
            case "text": quiet = quiet && Self.is(value, "\"\"")
            case "delta": quiet = quiet && Self.isQuietDelta(value)
            default: quiet = false
            }
        }
        return isObject && quiet
    }

    private static func isQuietDelta(_ delta: UnsafeBufferPointer<UInt8>) -> Bool {
        var quiet = true
        let isObject = JSONObjectScanner.forEachMember(delta) { key, _, value in
            let value = UnsafeBufferPointer(rebasing: delta[value])
            switch Self.name(key) {
            case "role": quiet = quiet && value.first == UInt8(ascii: "\"")
            case "content", "refusal": quiet = quiet && (Self.is(value, "null") || Self.is(value, "\"\""))
            default: quiet = false
            }
        }
        return isObject && quiet
    }

    /// A member's name as written (an escaped name is no name this type knows, so it ends the prelude
    /// when it matters: an unknown member of a choice or delta).
    private static func name(_ key: UnsafeBufferPointer<UInt8>) -> Substring {
        Substring(decoding: key, as: UTF8.self)
    }

    private static func `is`(_ value: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        value.count == literal.utf8CodeUnitCount
            && value.elementsEqual(UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }
}
