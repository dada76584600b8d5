import Foundation
import NIOCore
import NIOFoundationCompat
import SidecarCore
import SidecarOpenAI

/// The decode stage and the `model` rewrite of a chat or completions request body.
///
/// A body is in scope when the sidecar would forward it: the decode stage
/// (`RequestDecoder.decodeWithLayout`: the single-pass parser, else `JSONDecoder` and the
/// strict checks) reads it. Invariants: such a body is valid JSON, and
///
/// 1. when the parser reads a body, `JSONDecoder` reads it too and gives the same view, and the
///    rewrite from the parser's layout equals the rewrite from a fresh scan byte for byte;
/// 2. the rewritten body (as `UpstreamRequestBuilder` makes it) decodes (`JSONDecoder`) to the
///    same view with only `model` changed (and `stream_options.include_usage` set when asked):
///    the sidecar and the upstream read the same request;
/// 3. when `JSONSerialization` parses the body, it parses the rewritten body too, and the two
///    trees are equal but for `model` (and `stream_options`, which becomes the old object, or
///    `{}` if it was not one, with `include_usage: true`). It keeps the last of a repeated key,
///    as most upstream servers do. When it rejects the body (a number beyond `Double`, which
///    `JSONDecoder` skips in fields it does not read), only check 2 applies, as it does when the
///    body holds a raw U+FEFF (``FoundationJSON/hasRawByteOrderMark(_:)``).
package enum OpenAIRequestCheck {
    static let target = "openai-request"

    /// The rewrites tried on each body: a plain name, one that needs escaping, usage alone.
    static let rewrites: [(model: String?, includeUsage: Bool)] = [
        ("llama3.2:3b", false),
        ("we\"ird\\ \n\u{1}\u{7F} é \u{1F600} \u{2028}", true),
        (nil, true),
    ]

    /// `stream_options` as the rewrite sets it (the type has no public initialiser).
    static let includeUsageOptions = try? JSONDecoder().decode(
        OpenAIRequestView.StreamOptions.self,
        from: Data(#"{"include_usage":true}"#.utf8)
    )

    package static func run(_ bytes: [UInt8]) throws(FuzzFailure) {
        let body = ByteBuffer(bytes: bytes)
        if let fast = OpenAIRequestParser.parseWithLayout(body) {
            guard let slow = try? JSONDecoder().decode(OpenAIRequestView.self, from: Data(bytes)) else {
                throw Self.failure("the parser read a body JSONDecoder rejects", bytes)
            }
            guard fast.view == slow else {
                throw Self.failure("the parser read \(fast.view), JSONDecoder \(slow)", bytes)
            }
        }
        // Refused (400), never forwarded.
        guard let (view, layout) = try? RequestDecoder.decodeWithLayout(body) else { return }
        guard OpenAIRequestParser.isValidJSON(body) else {
            throw Self.failure("the decode stage let through a body that is not valid JSON", bytes)
        }
        // Foundation drops a raw U+FEFF that starts a string, keys included, so `"\u{FEFF}model"`
        // and the `model` the rewrite adds would read as one key: its trees cannot judge such a
        // body, and checks 1 and 2 (which keep keys as written) still do.
        let original = FoundationJSON.hasRawByteOrderMark(bytes) ? nil : FoundationJSON.object(bytes)
        for (model, includeUsage) in Self.rewrites {
            let scanned = RequestBodyRewriter.rewrite(body, model: model, includeUsage: includeUsage)
            let rewritten: ByteBuffer?
            if let layout {
                rewritten = RequestBodyRewriter.rewrite(body, layout: layout, model: model, includeUsage: includeUsage)
                guard rewritten == scanned else {
                    throw Self.failure("the layout and scanner rewrites differ: \(Self.text(rewritten))", bytes)
                }
            } else {
                rewritten = scanned
            }
            guard let rewritten else { throw Self.failure("a decoded body was not rewritten", bytes) }
            let output = Array(rewritten.readableBytesView)
            try Self.checkView(view, output: output, model: model, includeUsage: includeUsage, input: bytes)
            if let original {
                try Self.checkTree(original, output: output, model: model, includeUsage: includeUsage, input: bytes)
            }
        }
    }

    private static func checkView(
        _ view: OpenAIRequestView,
        output: [UInt8],
        model: String?,
        includeUsage: Bool,
        input: [UInt8]
    ) throws(FuzzFailure) {
        var expected = view
        if let model { expected.model = model }
        if includeUsage { expected.streamOptions = Self.includeUsageOptions }
        let decoded: OpenAIRequestView
        do {
            decoded = try JSONDecoder().decode(OpenAIRequestView.self, from: Data(output))
        } catch {
            throw Self.failure("JSONDecoder rejects the rewritten \(Self.text(output)): \(error)", input)
        }
        guard decoded == expected else {
            throw Self.failure("the rewritten \(Self.text(output)) reads as \(decoded), not \(expected)", input)
        }
    }

    private static func checkTree(
        _ original: [String: Any],
        output: [UInt8],
        model: String?,
        includeUsage: Bool,
        input: [UInt8]
    ) throws(FuzzFailure) {
        guard let rewritten = FoundationJSON.object(output) else {
            throw Self.failure("JSONSerialization rejects the rewritten \(Self.text(output))", input)
        }
        var expected = original
        if let model { expected["model"] = model }
        if includeUsage {
            var options = original["stream_options"] as? [String: Any] ?? [:]
            options["include_usage"] = true
            expected["stream_options"] = options
        }
        guard FoundationJSON.equal(rewritten, expected) else {
            throw Self.failure(
                "the rewritten \(Self.text(output)) is \(FoundationJSON.describe(rewritten)), "
                    + "expected \(FoundationJSON.describe(expected))",
                input
            )
        }
    }

    static func failure(_ message: String, _ input: [UInt8]) -> FuzzFailure {
        FuzzFailure(Self.target, "\(message); body \(Self.text(input))")
    }

    static func text(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(400), as: UTF8.self)
        return String(reflecting: bytes.count > 400 ? text + "..." : text)
    }

    static func text(_ buffer: ByteBuffer?) -> String {
        buffer.map { Self.text(Array($0.readableBytesView)) } ?? "nil"
    }
}
