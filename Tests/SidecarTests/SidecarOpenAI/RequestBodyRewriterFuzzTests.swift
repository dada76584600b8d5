import SidecarFuzzing
import Testing

/// The `openai-request` and `openai-request-gen` fuzz targets' invariants on seeded inputs
/// (scripts/fuzz.sh runs them under libFuzzer), and the inputs they found, replayed.
struct RequestBodyRewriterFuzzTests {
    @Test func seededBodiesDecodeAndRewriteConsistently() {
        FuzzProperty.check(.openAIRequest, count: 3000, seed: 2)
    }

    @Test func generatedRequestsDecodeAndRewriteConsistently() {
        FuzzProperty.check(.openAIRequestGenerated, count: 3000, seed: 3)
    }

    /// Both `model` and `stream_options` inserted into `{}`: no comma between them.
    @Test func twoInsertedMembersAreSeparated() {
        FuzzProperty.replay(.openAIRequest, Array("{}".utf8))
    }
}
