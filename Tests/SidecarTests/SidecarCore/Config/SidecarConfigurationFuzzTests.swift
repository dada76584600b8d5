import SidecarFuzzing
import Testing

@testable import SidecarCore

/// The `config` fuzz target's invariants on seeded inputs (scripts/fuzz.sh runs it under
/// libFuzzer), and the inputs it found, replayed.
struct SidecarConfigurationFuzzTests {
    @Test func seededConfigFilesParseOrThrowAConfigurationError() {
        FuzzProperty.check(.configuration, count: 2000, seed: 5)
    }

    /// toml++ 3.4 (in TOMLKit) aborts on these (an assertion, in release builds too): they are
    /// refused before it, with their line.
    @Test(arguments: [
        ("[é]", 1), ("[spend]\n[=]\n", 2), ("[[[a]]]", 1), ("a = 1\n  [\n", 2), ("x = \"\"\"\n[ok\n\"\"\"\n[#]", 4),
        ("x = 1979-05-27TWW*7:32:00", 1), ("[t]\ny = [ 1, 2000-01-01t: ]", 2), ("z = { a = 1999-12-31T:00 }", 1),
        ("b = [ { a = 5 },}\u{0} ]", 1), ("b = [\n1,\n\u{2028}2 ]", 3), ("c = [ \u{85} ]", 1),
        ("x = 1979-05-27 2], [1]", 1), ("[a]\nx = 1979-05-27 2", 2), ("x = [1979-05-27 2,]", 1),
        ("x = 19Q9-05-27 2]", 1), ("x = 1_979-05-27 2\u{A0}", 1), ("x = 1é79-05-27 2]", 1),
        ("x = 1\u{FFFD}79-05-27 2]", 1), ("x = 1日本9-05-27 2]", 1),
    ])
    func constructsThatCrashTOMLKitAreErrors(_ text: String, line: Int) {
        FuzzProperty.replay(.configuration, Array(text.utf8))
        #expect(TOMLParserGuard.firstUnsafeConstruct(in: text)?.line == line)
        #expect(throws: ConfigurationError.self) { try SidecarConfiguration(toml: text, file: "fuzz.conf") }
    }

    @Test(arguments: [
        "[server] # [é]\nlisten = \"[=]\"\n", "tiers = [\n  [1, 2],\n  { a = 1 },\n]\n", "s = '''\n[=]\n'''\n",
        "1979-05-27Tx = 1\n", "a = { 1979-05-27T = 1 }\n",
        "d = 1979-05-27T07:32:00Z\ne = 1979-05-27 07:32:00\nf = 1979-05-27 # 2\n",
        "\u{FEFF}[a]\n", "p = \"£ \u{2028}\" # \u{85}\nq = [ { a = 1 }, [ { b = 2 } ] ]\n",
    ])
    func validTOMLIsLeftToTheParser(_ text: String) {
        #expect(TOMLParserGuard.firstUnsafeConstruct(in: text) == nil)
    }

    @Test(arguments: [
        "found-header-without-name", "found-date-without-time", "found-brace-in-array", "found-date-and-lone-digit",
        "found-date-multibyte-lone-digit",
    ])
    func foundInputsAreErrors(_ name: String) {
        let input = FuzzProperty.seed(.configuration, name)
        FuzzProperty.replay(.configuration, input)
        #expect(throws: ConfigurationError.self) {
            try SidecarConfiguration(toml: String(decoding: input, as: UTF8.self), file: "fuzz.conf")
        }
    }

    /// An unknown key ending in `[` (`"##[" = ""`): finding its line for the error trapped on a
    /// bad range in TOMLLineLocator (it took the key for `upstreams[2]` without its `]`).
    @Test func anUnknownKeyWithABracketIsAnError() {
        let text = "\"##[\"=\"\""
        FuzzProperty.replay(.configuration, Array(text.utf8))
        #expect(throws: ConfigurationError.self) { try SidecarConfiguration(toml: text, file: "fuzz.conf") }
        #expect(TOMLLineLocator(file: "f", source: "[a[]\n").line(of: "a[") == nil)
    }
}
