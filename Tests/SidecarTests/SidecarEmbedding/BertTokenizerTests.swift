import Foundation
import Testing

@testable import SidecarCore
@testable import SidecarEmbedding

/// Tokenizer behaviour on a small inline vocabulary (ids are line numbers).
struct BertTokenizerTests {
    static let vocabulary = [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
        "hello", "world", ",", "!", "?", "'", "$", "^", "`", "~", "-",
        "un", "##aff", "##able", "cafe", "naive", "中", "国", "a", "##b", "οδοσ", "s",
    ]

    static func id(_ token: String) -> Int32 {
        Int32(vocabulary.firstIndex(of: token) ?? -1)
    }

    static func ids(_ tokens: String...) -> [Int32] {
        [id("[CLS]")] + tokens.map(id) + [id("[SEP]")]
    }

    let tokenizer: BertTokenizer

    init() throws {
        self.tokenizer = try BertTokenizer(vocabulary: WordPieceVocabulary(tokens: Self.vocabulary))
    }

    @Test func wrapsTokensInClassifierAndSeparator() {
        #expect(self.tokenizer.encode("hello world") == Self.ids("hello", "world"))
        #expect(self.tokenizer.encode("") == Self.ids())
    }

    @Test func splitsEveryPunctuationCharacterIntoItsOwnToken() {
        #expect(self.tokenizer.encode("hello,world!?") == Self.ids("hello", ",", "world", "!", "?"))
        #expect(self.tokenizer.encode("world's") == Self.ids("world", "'", "s"))
    }

    @Test func treatsAsciiSymbolsAsPunctuationLikeBert() {
        // $ ^ ` ~ are Unicode symbols (S*), but BERT splits all of ASCII 33-47, 58-64, 91-96, 123-126.
        #expect(
            self.tokenizer.encode("hello$world^a`a~a") == Self.ids("hello", "$", "world", "^", "a", "`", "a", "~", "a")
        )
    }

    @Test func lowercasesAndStripsAccents() {
        #expect(self.tokenizer.encode("HELLO Café NAÏVE") == Self.ids("hello", "cafe", "naive"))
        // Decomposed input (e + combining acute) gives the same ids as precomposed.
        #expect(self.tokenizer.encode("cafe\u{301}") == Self.ids("cafe"))
    }

    @Test func lowercasesCodePointByCodePointLikeHuggingFace() {
        // HuggingFace lower-cases character by character: no final sigma, full mappings.
        let basic = BertBasicTokenizer()
        #expect(basic.words("ΟΔΟΣ").map { String(String.UnicodeScalarView($0)) } == ["οδοσ"])
        #expect(self.tokenizer.encode("ΟΔΟΣ") == Self.ids("οδοσ"))
        #expect(BertBasicTokenizer.lowercased(Array("İA".unicodeScalars)) == Array("i\u{307}a".unicodeScalars))
    }

    @Test func splitsChineseCharactersIntoSeparateWords() {
        #expect(self.tokenizer.encode("中国") == Self.ids("中", "国"))
        #expect(self.tokenizer.encode("hello中国world") == Self.ids("hello", "中", "国", "world"))
    }

    @Test func removesControlCharactersAndNormalisesWhitespace() {
        #expect(self.tokenizer.encode("\u{0}hello\u{200B}\t\nworld\u{FFFD}\u{7F}") == Self.ids("hello", "world"))
        #expect(self.tokenizer.encode("hello\u{3000}world\u{2028}a") == Self.ids("hello", "world", "a"))
    }

    @Test func usesLongestMatchFirstWithContinuationPrefix() {
        #expect(self.tokenizer.encode("unaffable") == Self.ids("un", "##aff", "##able"))
        #expect(self.tokenizer.encode("abbb") == Self.ids("a", "##b", "##b", "##b"))
    }

    @Test func mapsWordsWithoutACoveringSplitToUnknown() {
        #expect(self.tokenizer.encode("unaffablex hello") == Self.ids("[UNK]", "hello"))
        #expect(self.tokenizer.encode("xyz") == Self.ids("[UNK]"))
    }

    @Test func mapsWordsLongerThanOneHundredCharactersToUnknown() {
        let hundred = "a" + String(repeating: "b", count: 99)
        #expect(self.tokenizer.encode(hundred).count == 102)
        #expect(self.tokenizer.encode(hundred + "b") == Self.ids("[UNK]"))
    }

    @Test func keepsSpecialTokensInTextWhole() {
        #expect(self.tokenizer.encode("hello [SEP] world[MASK]") == Self.ids("hello", "[SEP]", "world", "[MASK]"))
        // Matching is case-sensitive, as in HuggingFace: "[sep]" is ordinary text.
        #expect(self.tokenizer.encode("[sep]") == Self.ids("[UNK]", "[UNK]", "[UNK]"))
    }

    @Test func truncatesToTwoHundredFiftySixTokensIncludingSpecials() {
        let ids = self.tokenizer.encode(String(repeating: "hello ", count: 300))
        #expect(ids.count == 256)
        #expect(ids.first == Self.id("[CLS]"))
        #expect(ids.last == Self.id("[SEP]"))
        #expect(ids.dropFirst().dropLast().allSatisfy { $0 == Self.id("hello") })
        #expect(self.tokenizer.encode(String(repeating: "hello ", count: 254)).count == 256)
        #expect(self.tokenizer.encode(String(repeating: "abbb ", count: 100)).count == 256)
    }

    @Test func honoursDoLowerCaseFalseFromTokenizerConfig() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bert-tokenizer-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let vocabulary = Self.vocabulary + ["Hello", "Café"]
        try (vocabulary.joined(separator: "\n") + "\n").write(
            to: directory.appendingPathComponent("vocab.txt"),
            atomically: true,
            encoding: .utf8
        )
        let cased = try BertTokenizer(directory: directory)
        #expect(cased.encode("Hello") == Self.ids("hello"))

        try #"{"do_lower_case": false, "strip_accents": null}"#.write(
            to: directory.appendingPathComponent("tokenizer_config.json"),
            atomically: true,
            encoding: .utf8
        )
        let uncased = try BertTokenizer(directory: directory)
        #expect(uncased.encode("Hello hello Café") == [2, 27, 5, 28, 3])
    }

    @Test func rejectsVocabularyWithoutSpecialTokens() {
        #expect(throws: EmbeddingError.invalidVocabulary) {
            try BertTokenizer(vocabulary: WordPieceVocabulary(tokens: ["hello", "world"]))
        }
    }
}
