import SidecarFuzzing
import Testing

/// The `sse` fuzz target's invariants on seeded inputs (scripts/fuzz.sh runs it under
/// libFuzzer), and the inputs it found, replayed.
struct ServerSentEventParserFuzzTests {
    @Test func seededStreamsParseAlikeWholeOrSplit() {
        FuzzProperty.check(.serverSentEvents, count: 3000, seed: 4)
    }
}
