import Foundation
import NIOCore
import SidecarOpenAI

/// Serves a stored answer in the shape the client asked for: a whole JSON body, or the SSE
/// chunks of a stream. An answer stored in the other shape is converted: a stream's chunks are
/// merged into one `chat.completion` (or `text_completion`) object, and a whole answer is cut
/// into chunks (role, the text word by word, tool calls, the finish reason, then usage).
package enum AnswerShaper {
    /// The whole JSON body of `answer`.
    package static func wholeBody(_ answer: StoredAnswer) -> [UInt8]? {
        switch answer.body {
        case .whole(let body): return body
        case .events(let events): return self.merge(events)
        }
    }

    /// The `data` of each SSE event to replay (without `[DONE]`); the usage-only chunk is kept
    /// only when the client asked for usage.
    package static func events(_ answer: StoredAnswer, includeUsage: Bool) -> [[UInt8]]? {
        switch answer.body {
        case .events(let events):
            return includeUsage ? events : events.filter { !Self.isUsageOnlyChunk($0) }
        case .whole(let body):
            return self.split(body, includeUsage: includeUsage)
        }
    }

    // MARK: Stream -> whole

    private struct ToolCall {
        var id: Any?
        var type: Any?
        var name = ""
        var arguments = ""
    }

    private struct Choice {
        var role = "assistant"
        var content: String?
        var text: String?
        var refusal: String?
        var toolCalls: [Int: ToolCall] = [:]
        var finishReason: Any = NSNull()
        var logprobs: [Any] = []
    }

    static func merge(_ events: [[UInt8]]) -> [UInt8]? {
        var id: Any = "cached"
        var created: Any = 0
        var model: Any = ""
        var object = "chat.completion"
        var fingerprint: Any?
        var usage: Any?
        var choices: [Int: Choice] = [:]
        for event in events {
            guard let chunk = try? JSONSerialization.jsonObject(with: Data(event)) as? [String: Any] else { continue }
            if let value = chunk["id"] { id = value }
            if let value = chunk["created"] { created = value }
            if let value = chunk["model"] { model = value }
            if let value = chunk["system_fingerprint"] { fingerprint = value }
            if (chunk["object"] as? String) == "text_completion" { object = "text_completion" }
            if let value = chunk["usage"], !(value is NSNull) { usage = value }
            for case let entry as [String: Any] in chunk["choices"] as? [Any] ?? [] {
                let index = (entry["index"] as? Int) ?? 0
                var choice = choices[index] ?? Choice()
                if let text = entry["text"] as? String { choice.text = (choice.text ?? "") + text }
                if let delta = entry["delta"] as? [String: Any] {
                    if let role = delta["role"] as? String { choice.role = role }
                    if let content = delta["content"] as? String { choice.content = (choice.content ?? "") + content }
                    if let refusal = delta["refusal"] as? String { choice.refusal = (choice.refusal ?? "") + refusal }
                    for case let call as [String: Any] in delta["tool_calls"] as? [Any] ?? [] {
                        let position = (call["index"] as? Int) ?? 0
                        var merged = choice.toolCalls[position] ?? ToolCall()
                        if let value = call["id"] { merged.id = value }
                        if let value = call["type"] { merged.type = value }
                        if let function = call["function"] as? [String: Any] {
                            merged.name += (function["name"] as? String) ?? ""
                            merged.arguments += (function["arguments"] as? String) ?? ""
                        }
                        choice.toolCalls[position] = merged
                    }
                }
                if let reason = entry["finish_reason"], !(reason is NSNull) { choice.finishReason = reason }
                if let logprobs = entry["logprobs"] as? [String: Any], let content = logprobs["content"] as? [Any] {
                    choice.logprobs += content
                }
                choices[index] = choice
            }
        }
        var whole: [String: Any] = ["id": id, "object": object, "created": created, "model": model]
        if let fingerprint { whole["system_fingerprint"] = fingerprint }
        whole["choices"] = choices.keys.sorted().compactMap { index -> [String: Any]? in
            guard let choice = choices[index] else { return nil }
            var out: [String: Any] = ["index": index, "finish_reason": choice.finishReason]
            out["logprobs"] = choice.logprobs.isEmpty ? NSNull() : ["content": choice.logprobs]
            if object == "text_completion" {
                out["text"] = choice.text ?? ""
                return out
            }
            var message: [String: Any] = ["role": choice.role, "content": choice.content ?? NSNull()]
            if let refusal = choice.refusal { message["refusal"] = refusal }
            if !choice.toolCalls.isEmpty {
                message["tool_calls"] = choice.toolCalls.keys.sorted().compactMap { position -> [String: Any]? in
                    guard let call = choice.toolCalls[position] else { return nil }
                    return [
                        "id": call.id ?? "call_\(position)", "type": call.type ?? "function",
                        "function": ["name": call.name, "arguments": call.arguments],
                    ]
                }
            }
            out["message"] = message
            return out
        }
        if let usage { whole["usage"] = usage }
        return (try? JSONSerialization.data(withJSONObject: whole, options: [.withoutEscapingSlashes])).map(Array.init)
    }

    // MARK: Whole -> stream

    static func split(_ body: [UInt8], includeUsage: Bool) -> [[UInt8]]? {
        guard let whole = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else { return nil }
        let legacy = (whole["object"] as? String) == "text_completion"
        var base: [String: Any] = [
            "id": whole["id"] ?? "cached", "created": whole["created"] ?? 0, "model": whole["model"] ?? "",
            "object": legacy ? "text_completion" : "chat.completion.chunk",
        ]
        if let fingerprint = whole["system_fingerprint"] { base["system_fingerprint"] = fingerprint }
        var chunks: [[String: Any]] = []
        func chunk(_ choice: [String: Any]) {
            var out = base
            out["choices"] = [choice]
            chunks.append(out)
        }
        for case let choice as [String: Any] in whole["choices"] as? [Any] ?? [] {
            let index = choice["index"] ?? 0
            if legacy {
                for piece in Self.pieces(choice["text"] as? String ?? "") {
                    chunk(["index": index, "text": piece, "finish_reason": NSNull(), "logprobs": NSNull()])
                }
                chunk([
                    "index": index, "text": "", "finish_reason": choice["finish_reason"] ?? "stop",
                    "logprobs": NSNull(),
                ])
                continue
            }
            let message = choice["message"] as? [String: Any] ?? [:]
            chunk([
                "index": index, "delta": ["role": message["role"] ?? "assistant", "content": ""],
                "finish_reason": NSNull(),
            ])
            for piece in Self.pieces(message["content"] as? String ?? "") {
                chunk(["index": index, "delta": ["content": piece], "finish_reason": NSNull()])
            }
            if let refusal = message["refusal"] as? String {
                chunk(["index": index, "delta": ["refusal": refusal], "finish_reason": NSNull()])
            }
            if let calls = message["tool_calls"] as? [Any] {
                let indexed = calls.enumerated().map { position, call -> Any in
                    guard var call = call as? [String: Any] else { return call }
                    call["index"] = position
                    return call
                }
                chunk(["index": index, "delta": ["tool_calls": indexed], "finish_reason": NSNull()])
            }
            chunk(["index": index, "delta": [String: Any](), "finish_reason": choice["finish_reason"] ?? "stop"])
        }
        if includeUsage, let usage = whole["usage"] {
            var out = base
            out["choices"] = [Any]()
            out["usage"] = usage
            chunks.append(out)
        }
        var events: [[UInt8]] = []
        for chunk in chunks {
            guard let data = try? JSONSerialization.data(withJSONObject: chunk, options: [.withoutEscapingSlashes])
            else { return nil }
            events.append(Array(data))
        }
        return events
    }

    /// The text cut after each run of white space, so a replay arrives word by word.
    static func pieces(_ text: String) -> [String] {
        var pieces: [String] = []
        var current = ""
        var sawSpace = false
        for character in text {
            if sawSpace && !character.isWhitespace {
                pieces.append(current)
                current = ""
                sawSpace = false
            }
            current.append(character)
            if character.isWhitespace { sawSpace = true }
        }
        if !current.isEmpty { pieces.append(current) }
        return pieces
    }

    /// The chunk `stream_options.include_usage` adds: usage and no choices (``OpenAIUsageProbe``).
    static func isUsageOnlyChunk(_ event: [UInt8]) -> Bool {
        OpenAIUsageProbe(ByteBuffer(bytes: event))?.isUsageOnlyChunk ?? false
    }
}
