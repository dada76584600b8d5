import Testing

@testable import SidecarOpenAI

@Suite struct GeneratedTextCounterTests {
    @Test func countsContentTextAndToolArgumentsButNotOtherStrings() {
        let body =
            #"{"id":"x","model":"content","choices":[{"message":{"role":"assistant","content":"four"}},"#
            + #"{"text":"ab"},{"function":{"name":"f","arguments":"{\"a\":1}"}}]}"#
        // "four" + "ab" + {"a":1} (7 characters, escapes counted once).
        #expect(GeneratedTextCounter.count(body) == 4 + 2 + 7)
    }

    @Test func toleratesSpacesAroundTheColonAndNullContent() {
        #expect(GeneratedTextCounter.count(#"{"delta": {"content" :  "hey"}}"#) == 3)
        #expect(GeneratedTextCounter.count(#"{"delta":{"content":null}}"#) == 0)
    }

    @Test func aKeyThatOnlyEndsInContentDoesNotCount() {
        #expect(GeneratedTextCounter.count(#"{"reasoning_content":"hmm","content":"ok"}"#) == 2)
    }

    @Test func unicodeEscapesAreOneCharacterAndTruncatedInputIsSafe() {
        #expect(GeneratedTextCounter.count(#"{"content":"\u00e9t\u00e9"}"#) == 3)
        for cut in 0..<30 {
            _ = GeneratedTextCounter.count(String(#"{"content":"abc\"def","text":"x"}"#.prefix(cut)))
        }
    }
}
