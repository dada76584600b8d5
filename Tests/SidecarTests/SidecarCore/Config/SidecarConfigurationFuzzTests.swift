import SidecarCore
import SidecarFuzzing
import Testing

/// The `config` fuzz target's invariants on seeded inputs (scripts/fuzz.sh runs it under
/// libFuzzer), and the inputs it found, replayed.
struct SidecarConfigurationFuzzTests {
    @Test func seededConfigFilesParseOrThrowAConfigurationError() {
        FuzzProperty.check(.configuration, count: 2000, seed: 5)
    }
}
