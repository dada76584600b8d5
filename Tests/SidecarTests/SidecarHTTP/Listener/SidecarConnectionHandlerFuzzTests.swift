import SidecarFuzzing
import Testing

/// The `http-request` fuzz target's invariants on seeded inputs (scripts/fuzz.sh runs it under
/// libFuzzer), and the inputs it found, replayed. Each input is the target's four-byte header
/// (body limit, answer timing and framing, how the connection ends) then the client's bytes.
struct SidecarConnectionHandlerFuzzTests {
    @Test func seededClientBytesGetWellFormedAnswers() {
        FuzzProperty.check(.httpRequest, count: 1500, seed: 1)
    }
}
