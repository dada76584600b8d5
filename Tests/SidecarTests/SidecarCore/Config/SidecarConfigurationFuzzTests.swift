import SidecarCore
import SidecarFuzzing
import Testing

/// The `config` fuzz target's invariants on seeded inputs (scripts/fuzz.sh runs it under
/// libFuzzer), and the inputs it found, replayed.
struct SidecarConfigurationFuzzTests {
    @Test func seededConfigFilesParseOrThrowAConfigurationError() {
        FuzzProperty.check(.configuration, count: 2000, seed: 5)
    }

    /// toml++ 3.4 (in TOMLKit) aborts on a table header that does not start with a key (an
    /// assertion in debug builds, undefined behaviour in release builds): refused before it.
    @Test(arguments: ["[é]", "[spend]\n[=]\n", "[[[a]]]", "a = 1\n  [\n", "x = \"\"\"\n[ok\n\"\"\"\n[#]"])
    func aHeaderWithoutANameIsAnErrorNotACrash(_ text: String) {
        FuzzProperty.replay(.configuration, Array(text.utf8))
        #expect(throws: ConfigurationError.self) { try SidecarConfiguration(toml: text, file: "fuzz.conf") }
    }

    @Test func headersInsideValuesAndStringsAreLeftAlone() throws {
        let text = """
            [server]
            listen = "127.0.0.1:8088" # [é]
            [routing]
            tiers = [
              { max_score = 1.01, model = "m" },
            ]
            [[upstreams]]
            name = "u"
            base_url = "http://127.0.0.1:1/v1"
            [[models]]
            name = "m"
            upstream = "u"
            """
        #expect(throws: Never.self) { try SidecarConfiguration(toml: text, file: "ok.conf") }
    }
}
