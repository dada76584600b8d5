import Foundation
import NIOCore
import NIOFoundationCompat

/// Token counts from an upstream's `usage` object.
public struct OpenAIUsage: Decodable, Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int

    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }

    package enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.promptTokens = try container.decodeIfPresent(Int.self, forKey: .promptTokens) ?? 0
        // Embeddings responses carry no completion_tokens.
        self.completionTokens = try container.decodeIfPresent(Int.self, forKey: .completionTokens) ?? 0
    }
}

extension OpenAIUsage {
    /// Reads `prompt_tokens` and `completion_tokens` from a `usage` object's bytes without a
    /// JSON decoder; `nil` when the value is not an object (`null` included).
    package init?(scanning usage: UnsafeBufferPointer<UInt8>) {
        var prompt = 0
        var completion = 0
        let isObject = JSONObjectScanner.forEachMember(usage) { key, _, valueRange in
            let isPrompt = key.elementsEqual("prompt_tokens".utf8)
            guard isPrompt || key.elementsEqual("completion_tokens".utf8),
                let value = Self.nonNegativeInteger(UnsafeBufferPointer(rebasing: usage[valueRange]))
            else { return }
            if isPrompt { prompt = value } else { completion = value }
        }
        guard isObject else { return nil }
        self.init(promptTokens: prompt, completionTokens: completion)
    }

    /// A JSON number made of digits only (token counts), with overflow checked.
    private static func nonNegativeInteger(_ bytes: some Collection<UInt8>) -> Int? {
        guard !bytes.isEmpty else { return nil }
        var value = 0
        for byte in bytes {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            guard !overflow1 && !overflow2 else { return nil }
            value = sum
        }
        return value
    }
}

/// The `usage` of a whole response body, or of one stream chunk with whether it has choices.
///
/// Found by scanning the top-level members, then decoding only the `usage` value: response
/// bodies can be large, and only these few bytes matter.
package struct OpenAIUsageProbe: Sendable {
    package var usage: OpenAIUsage?
    /// Whether `choices` is present and not an empty array.
    package var hasChoices: Bool

    package init?(_ body: ByteBuffer) {
        var usage: OpenAIUsage?
        var hasChoices = false
        let isObject = body.withUnsafeReadableBytes { raw in
            let bytes = raw.assumingMemoryBound(to: UInt8.self)
            return JSONObjectScanner.forEachMember(bytes) { key, _, valueRange in
                if key.elementsEqual("usage".utf8) {
                    usage = OpenAIUsage(scanning: UnsafeBufferPointer(rebasing: bytes[valueRange]))
                } else if key.elementsEqual("choices".utf8) {
                    hasChoices = Self.isNonEmptyArray(UnsafeBufferPointer(rebasing: bytes[valueRange]))
                }
            }
        }
        guard isObject else { return nil }
        self.usage = usage
        self.hasChoices = hasChoices
    }

    /// An array whose first byte after "[" and any white space is not "]" has an element.
    private static func isNonEmptyArray(_ value: UnsafeBufferPointer<UInt8>) -> Bool {
        guard value.first == UInt8(ascii: "[") else { return false }
        for byte in value.dropFirst() {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): continue
            case UInt8(ascii: "]"): return false
            default: return true
            }
        }
        return false
    }

    /// A chunk that only carries usage (what `stream_options.include_usage` adds at the end).
    package var isUsageOnlyChunk: Bool { self.usage != nil && !self.hasChoices }
}
