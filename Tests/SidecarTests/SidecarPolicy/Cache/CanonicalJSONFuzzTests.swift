import SidecarFuzzing
import Testing

/// The `cache-key` and `cache-key-gen` fuzz targets' invariants on seeded inputs
/// (scripts/fuzz.sh runs them under libFuzzer), and the inputs they found, replayed.
struct CanonicalJSONFuzzTests {
    @Test func seededBodiesHaveAValidIdempotentCanonicalForm() {
        FuzzProperty.check(.cacheKey, count: 3000, seed: 6)
    }

    @Test func spellingsOfOneRequestShareTheirKey() {
        FuzzProperty.check(.cacheKeyGenerated, count: 3000, seed: 7)
    }

    /// `messages` and `prompt` were both masked: two markers, and the exact key held only the
    /// `prompt`, so requests differing in their user message shared a key.
    @Test func onlyOnePromptIsMasked() {
        FuzzProperty.replay(
            .cacheKey,
            Array(#"{"messages":[{"role":"user","content":"question A"}],"prompt":"x"}"#.utf8)
        )
    }

    /// A long or tiny plain decimal kept its digits, while the same number with an exponent
    /// went through `Double`: one request, two keys.
    @Test func plainAndExponentDecimalsShareTheirForm() throws {
        for (plain, exponent) in [("0.0000000000000123456", "1.23456e-14"), ("0.00001", "1e-5")] {
            try CanonicalJSONCheck.checkSpellings(
                Array(#"{"temperature":\#(plain)}"#.utf8),
                Array(#"{"temperature":\#(exponent)}"#.utf8)
            )
        }
    }

    /// The generator's "same document" merged keys Swift finds equal (`é`, `e\u{301}`), which
    /// JSON (and the canonical form) keeps apart: a check bug, kept as a seed.
    @Test func canonicallyEquivalentKeysStayApart() {
        FuzzProperty.replay(.cacheKeyGenerated, FuzzProperty.seed(.cacheKeyGenerated, "found-equivalent-keys"))
    }
}
