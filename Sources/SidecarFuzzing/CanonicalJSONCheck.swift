import NIOCore
import SidecarOpenAI
import SidecarPolicy

/// The cache key's canonical form (``CanonicalJSON``) and its digest (``CacheKey``).
///
/// In scope are valid JSON objects (``OpenAIRequestParser/isValidJSON(_:)``, which
/// `JSONSerialization` parses too): the canonicaliser only sees bodies the decode stage
/// validated, and is lenient about what is not JSON (it reads `1e10.0` as a number). For those: the canonicaliser accepts them (unless nested deeper than
/// it allows); its output parses too and means the same (equal trees, so two different
/// requests can never share a key); canonicalising the output gives the output again; masking
/// the prompt only cuts the prompt out (the unmasked form is the masked one with the prompt put
/// back in the marker's place); its `n` and `temperature` are the document's. The meaning is
/// not compared for documents with non-ASCII keys, which `JSONSerialization` may merge (see
/// ``FoundationJSON``).
///
/// ``checkSpellings(_:_:)`` checks that two spellings of one document (key order, white space,
/// escapes, number spellings) get one canonical form and one key.
package enum CanonicalJSONCheck {
    static let target = "cache-key"
    /// The members the response cache drops before hashing.
    static let dropped = CanonicalJSON.MemberNames.answerShape

    package static func run(_ bytes: [UInt8]) throws(FuzzFailure) {
        try Self.checkPathsAgree(bytes)
        guard OpenAIRequestParser.isValidJSON(ByteBuffer(bytes: bytes)), let original = FoundationJSON.object(bytes)
        else {
            _ = CanonicalJSON.canonicalize(bytes, dropping: Self.dropped, maskingPrompt: true)
            return
        }
        guard let canonical = CanonicalJSON.canonicalize(bytes) else {
            if FoundationJSON.depth(original) < CanonicalJSON.maximumDepth - 2 {
                throw Self.failure("a JSON object was not canonicalised", bytes)
            }
            return
        }
        guard CanonicalJSON.canonicalize(canonical.context)?.context == canonical.context else {
            throw Self.failure("not idempotent: \(Self.text(canonical.context)) canonicalises differently", bytes)
        }
        try Self.checkMask(bytes)
        guard let tree = FoundationJSON.object(canonical.context) else {
            throw Self.failure("JSONSerialization rejects the canonical \(Self.text(canonical.context))", bytes)
        }
        // Foundation folds canonically equivalent keys, and drops a raw U+FEFF that starts one.
        guard !FoundationJSON.hasRawByteOrderMark(bytes) else { return }
        if !FoundationJSON.hasNonASCIIKey(original), !FoundationJSON.equal(original, tree) {
            throw Self.failure(
                "the canonical \(Self.text(canonical.context)) means \(FoundationJSON.describe(tree)), "
                    + "not \(FoundationJSON.describe(original))",
                bytes
            )
        }
        for (name, value) in [("n", canonical.n), ("temperature", canonical.temperature)] {
            let number = original[name].flatMap { FoundationJSON.number($0) }
            guard value == number else {
                throw Self.failure(
                    "\(name) read as \(String(describing: value)), not \(String(describing: number))",
                    bytes
                )
            }
        }
    }

    /// Whatever the C fast path accepts, valid JSON or not, the Swift implementation reads the
    /// same way: the same canonical form, prompt, `n` and `temperature`.
    package static func checkPathsAgree(_ bytes: [UInt8]) throws(FuzzFailure) {
        for (dropping, masking) in [(Self.dropped, true), (Self.dropped, false), ([], true)]
            as [(CanonicalJSON.MemberNames, Bool)]
        {
            let fast = bytes.withUnsafeBufferPointer {
                CanonicalJSON.canonicalizeInC($0, dropping: dropping, maskingPrompt: masking)
            }
            guard let fast else { continue }
            let reference = bytes.withUnsafeBufferPointer {
                CanonicalJSON.canonicalizeInSwift($0, dropping: dropping, maskingPrompt: masking)
            }
            guard fast == reference else {
                throw Self.failure(
                    "the C path wrote \(Self.text(fast.context)) (prompt \(Self.text(fast.prompt))), the Swift one "
                        + "\(Self.text(reference?.context)) (prompt \(Self.text(reference?.prompt))), masking \(masking)",
                    bytes
                )
            }
        }
    }

    /// Masked and unmasked forms agree, with and without the dropped members.
    private static func checkMask(_ bytes: [UInt8]) throws(FuzzFailure) {
        let plain = CanonicalJSON.canonicalize(bytes, dropping: Self.dropped)
        let masked = CanonicalJSON.canonicalize(bytes, dropping: Self.dropped, maskingPrompt: true)
        guard let plain, let masked else {
            guard plain == nil, masked == nil else {
                throw Self.failure("masking changed whether the body is canonical", bytes)
            }
            return
        }
        var restored = masked.context
        let markers = restored.indices.filter { restored[$0] == CanonicalJSON.promptMarker }
        if masked.maskedPrompt {
            guard markers.count == 1, let marker = markers.first else {
                throw Self.failure("\(markers.count) prompt markers in \(Self.text(masked.context))", bytes)
            }
            restored.replaceSubrange(marker...marker, with: masked.prompt)
        } else {
            guard markers.isEmpty, masked.prompt.isEmpty else {
                throw Self.failure("a prompt marker or prompt without a masked prompt", bytes)
            }
        }
        guard restored == plain.context else {
            throw Self.failure(
                "the masked form with its prompt put back is \(Self.text(restored)), not \(Self.text(plain.context))",
                bytes
            )
        }
        guard masked.n == plain.n, masked.temperature == plain.temperature else {
            throw Self.failure("masking changed n or temperature", bytes)
        }
    }

    /// Two spellings of one document get one canonical form and one cache key.
    package static func checkSpellings(_ first: [UInt8], _ second: [UInt8]) throws(FuzzFailure) {
        let a = CanonicalJSON.canonicalize(first, dropping: Self.dropped, maskingPrompt: true)
        let b = CanonicalJSON.canonicalize(second, dropping: Self.dropped, maskingPrompt: true)
        guard a == b else {
            throw Self.failure(
                "two spellings canonicalise differently: \(Self.text(a?.context)) and \(Self.text(b?.context)) "
                    + "(prompts \(Self.text(a?.prompt)) and \(Self.text(b?.prompt))) for \(Self.text(second))",
                first
            )
        }
        guard let a else { return }
        let key = CacheKey(hashing: [Array("fuzz".utf8), a.context, a.prompt])
        guard let key, key == CacheKey(hashing: [Array("fuzz".utf8), b?.context ?? [], b?.prompt ?? []]),
            CacheKey(hex: key.hex) == key
        else {
            throw Self.failure("equal canonical forms gave different keys", first)
        }
    }

    static func failure(_ message: String, _ input: [UInt8]) -> FuzzFailure {
        FuzzFailure(Self.target, "\(message); body \(Self.text(input))")
    }

    static func text(_ bytes: [UInt8]?) -> String {
        guard let bytes else { return "nil" }
        let text = String(decoding: bytes.prefix(400), as: UTF8.self)
        return String(reflecting: bytes.count > 400 ? text + "..." : text)
    }
}
