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

    enum CodingKeys: String, CodingKey {
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
    init?(scanning usage: ByteBuffer) {
        guard let members = JSONObjectScanner.members(in: usage) else { return nil }
        var prompt = 0
        var completion = 0
        for member in members where member.key == "prompt_tokens" || member.key == "completion_tokens" {
            let bytes = usage.readableBytesView.dropFirst(member.valueRange.lowerBound).prefix(member.valueRange.count)
            guard let value = Self.nonNegativeInteger(bytes) else { continue }
            if member.key == "prompt_tokens" { prompt = value } else { completion = value }
        }
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
struct OpenAIUsageProbe: Sendable {
    var usage: OpenAIUsage?
    /// Whether `choices` is present and not an empty array.
    var hasChoices: Bool

    init?(_ body: ByteBuffer) {
        guard let members = JSONObjectScanner.members(in: body) else { return nil }
        self.usage = nil
        self.hasChoices = false
        for member in members {
            if member.key == "usage",
                let slice = body.getSlice(
                    at: body.readerIndex + member.valueRange.lowerBound,
                    length: member.valueRange.count
                )
            {
                self.usage = OpenAIUsage(scanning: slice)
            } else if member.key == "choices" {
                // An array whose first byte after "[" and any white space is not "]" has an element.
                self.hasChoices = body.withUnsafeReadableBytes { bytes in
                    var index = member.valueRange.lowerBound
                    guard index < member.valueRange.upperBound, bytes[index] == UInt8(ascii: "[") else { return false }
                    index += 1
                    while index < member.valueRange.upperBound {
                        switch bytes[index] {
                        case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"): index += 1
                        case UInt8(ascii: "]"): return false
                        default: return true
                        }
                    }
                    return false
                }
            }
        }
    }

    /// A chunk that only carries usage (what `stream_options.include_usage` adds at the end).
    var isUsageOnlyChunk: Bool { self.usage != nil && !self.hasChoices }
}
