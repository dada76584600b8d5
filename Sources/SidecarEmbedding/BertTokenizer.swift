import Foundation

/// BERT's full tokenizer (HuggingFace `BertTokenizer`): special tokens found in the text are
/// kept whole, the rest goes through ``BertBasicTokenizer`` and WordPiece, and the result is
/// wrapped in `[CLS]` ... `[SEP]` and truncated to ``maxLength`` ids.
package struct BertTokenizer: Sendable {
    /// The special tokens recognised verbatim (case-sensitive) in input text.
    package static let specialTokens = ["[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]"]

    package let basic: BertBasicTokenizer
    package let vocabulary: WordPieceVocabulary
    /// The most ids ``encode(_:)`` returns, `[CLS]` and `[SEP]` included.
    package let maxLength: Int
    package let classifierID: Int32
    package let separatorID: Int32
    package let unknownID: Int32
    private let specialIDs: [(bytes: [UInt8], id: Int32)]

    package init(vocabulary: WordPieceVocabulary, basic: BertBasicTokenizer = .init(), maxLength: Int = 256) throws {
        guard maxLength >= 2 else {
            throw EmbeddingError.invalidConfiguration("maxLength \(maxLength) leaves no room for [CLS] and [SEP]")
        }
        guard let cls = vocabulary.id(of: "[CLS]"), let sep = vocabulary.id(of: "[SEP]"),
            let unk = vocabulary.id(of: "[UNK]")
        else {
            throw EmbeddingError.invalidVocabulary("vocabulary lacks [CLS], [SEP] or [UNK]")
        }
        self.basic = basic
        self.vocabulary = vocabulary
        self.maxLength = maxLength
        self.classifierID = cls
        self.separatorID = sep
        self.unknownID = unk
        self.specialIDs = Self.specialTokens.compactMap { token in
            vocabulary.id(of: token).map { (Array(token.utf8), $0) }
        }
    }

    /// Loads `vocab.txt` and, if present, `tokenizer_config.json` from `directory`.
    package init(directory: URL, maxLength: Int = 256) throws {
        let vocabURL = directory.appendingPathComponent("vocab.txt")
        guard let contents = try? String(contentsOf: vocabURL, encoding: .utf8) else {
            throw EmbeddingError.modelFileMissing(vocabURL.path)
        }
        let vocabulary = WordPieceVocabulary(fileContents: contents)
        let configURL = directory.appendingPathComponent("tokenizer_config.json")
        var basic = BertBasicTokenizer()
        if let data = try? Data(contentsOf: configURL) {
            basic = try Self.basicTokenizer(configuration: data, file: configURL.path)
        }
        try self.init(vocabulary: vocabulary, basic: basic, maxLength: maxLength)
    }

    /// Token ids of `text`, starting with `[CLS]`, ending with `[SEP]`, at most ``maxLength``.
    package func encode(_ text: String) -> [Int32] {
        let budget = self.maxLength - 2
        var ids: [Int32] = [self.classifierID]
        ids.reserveCapacity(min(self.maxLength, text.utf8.count / 2 + 8))
        for segment in self.segments(text) {
            switch segment {
            case .special(let id):
                ids.append(id)
            case .text(let part):
                for word in self.basic.words(part) {
                    self.vocabulary.appendPieces(of: word, unknownID: self.unknownID, to: &ids)
                    if ids.count > budget { break }
                }
            }
            if ids.count > budget { break }
        }
        if ids.count > budget + 1 {
            ids.removeSubrange((budget + 1)...)
        }
        ids.append(self.separatorID)
        return ids
    }

    private enum Segment {
        case text(String)
        case special(Int32)
    }

    /// Splits `text` around verbatim special tokens, as HuggingFace's added-token trie does.
    private func segments(_ text: String) -> [Segment] {
        let bytes = Array(text.utf8)
        guard bytes.contains(0x5B) else {  // "["
            return [.text(text)]
        }
        var result: [Segment] = []
        var segmentStart = 0
        var index = 0
        while index < bytes.count {
            if bytes[index] == 0x5B,
                let match = self.specialIDs.first(where: { bytes[index...].starts(with: $0.bytes) })
            {
                if segmentStart < index {
                    result.append(.text(String(decoding: bytes[segmentStart..<index], as: UTF8.self)))
                }
                result.append(.special(match.id))
                index += match.bytes.count
                segmentStart = index
            } else {
                index += 1
            }
        }
        if segmentStart < bytes.count {
            result.append(.text(String(decoding: bytes[segmentStart...], as: UTF8.self)))
        }
        return result
    }

    private struct Configuration: Decodable {
        var doLowerCase: Bool?
        var stripAccents: Bool?
        var tokenizeChineseChars: Bool?

        enum CodingKeys: String, CodingKey {
            case doLowerCase = "do_lower_case"
            case stripAccents = "strip_accents"
            case tokenizeChineseChars = "tokenize_chinese_chars"
        }
    }

    private static func basicTokenizer(configuration data: Data, file: String) throws -> BertBasicTokenizer {
        let configuration: Configuration
        do {
            configuration = try JSONDecoder().decode(Configuration.self, from: data)
        } catch {
            throw EmbeddingError.invalidConfiguration("\(file): \(error)")
        }
        return BertBasicTokenizer(
            lowercase: configuration.doLowerCase ?? true,
            stripAccents: configuration.stripAccents,
            splitChineseCharacters: configuration.tokenizeChineseChars ?? true
        )
    }
}
