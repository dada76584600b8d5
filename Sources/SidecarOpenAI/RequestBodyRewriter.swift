import NIOCore

/// Rewrites a validated JSON request body by splicing bytes: every member the sidecar does not
/// change keeps its exact bytes and position.
package struct RequestBodyRewriter {
    private struct Splice {
        var range: Range<Int>
        var bytes: [UInt8]
    }

    /// Returns `body` with `model` set to `model` (when given) and, when `includeUsage` is set,
    /// `stream_options.include_usage` forced to `true`. Returns `nil` if `body` is not an object.
    package static func rewrite(_ body: ByteBuffer, model: String?, includeUsage: Bool) -> ByteBuffer? {
        guard let members = JSONObjectScanner.members(in: body) else { return nil }
        let view = body.readableBytesView
        let brace = view.firstIndex(of: UInt8(ascii: "{")).map { view.distance(from: view.startIndex, to: $0) } ?? 0
        var layout = RequestBodyLayout(brace: brace)
        layout.memberCount = members.count
        layout.model = members.last(where: { $0.key == "model" })?.valueRange
        layout.streamOptions = members.last(where: { $0.key == "stream_options" })?.valueRange
        return self.rewrite(body, layout: layout, model: model, includeUsage: includeUsage)
    }

    /// The same, with the member positions already known (from ``OpenAIRequestParser``).
    package static func rewrite(
        _ body: ByteBuffer,
        layout: RequestBodyLayout,
        model: String?,
        includeUsage: Bool
    )
        -> ByteBuffer?
    {
        var splices: [Splice] = []
        // New members, all placed right after the opening brace.
        var inserted: [[UInt8]] = []
        if let model {
            let encoded = JSONString.encode(model)
            if let range = layout.model {
                splices.append(Splice(range: range, bytes: encoded))
            } else {
                inserted.append(Array(#""model":"#.utf8) + encoded)
            }
        }
        if includeUsage {
            if let range = layout.streamOptions, let splice = Self.forceIncludeUsage(body, valueRange: range) {
                splices.append(splice)
            } else if let range = layout.streamOptions {
                // `stream_options: null` or another non-object: replace it.
                splices.append(Splice(range: range, bytes: Array(#"{"include_usage":true}"#.utf8)))
            } else {
                inserted.append(Array(#""stream_options":{"include_usage":true}"#.utf8))
            }
        }
        if !inserted.isEmpty { splices.append(Self.insertion(layout, members: inserted)) }
        if splices.isEmpty { return body }
        splices.sort { $0.range.lowerBound < $1.range.lowerBound }
        var out = ByteBuffer()
        out.reserveCapacity(body.readableBytes + splices.reduce(0) { $0 + $1.bytes.count })
        var cursor = 0
        let view = body.readableBytesView
        for splice in splices {
            out.writeBytes(view[(view.startIndex + cursor)..<(view.startIndex + splice.range.lowerBound)])
            out.writeBytes(splice.bytes)
            cursor = splice.range.upperBound
        }
        out.writeBytes(view[(view.startIndex + cursor)...])
        return out
    }

    /// New members placed right after the opening brace (`{"x":1,` ...), so they need no search
    /// for the closing one; one splice, so they keep their order and their commas.
    private static func insertion(_ layout: RequestBodyLayout, members: [[UInt8]]) -> Splice {
        var bytes = Array(members.joined(separator: [UInt8(ascii: ",")]))
        if layout.memberCount > 0 { bytes.append(UInt8(ascii: ",")) }
        return Splice(range: (layout.brace + 1)..<(layout.brace + 1), bytes: bytes)
    }

    private static func forceIncludeUsage(_ body: ByteBuffer, valueRange: Range<Int>) -> Splice? {
        guard let slice = body.getSlice(at: body.readerIndex + valueRange.lowerBound, length: valueRange.count),
            let inner = JSONObjectScanner.members(in: slice)
        else { return nil }
        if let member = inner.last(where: { $0.key == "include_usage" }) {
            let start = valueRange.lowerBound + member.valueRange.lowerBound
            let end = valueRange.lowerBound + member.valueRange.upperBound
            return Splice(range: start..<end, bytes: Array("true".utf8))
        }
        let position = valueRange.lowerBound + 1
        let bytes = Array(#""include_usage":true"#.utf8) + (inner.isEmpty ? [] : [UInt8(ascii: ",")])
        return Splice(range: position..<position, bytes: bytes)
    }
}
