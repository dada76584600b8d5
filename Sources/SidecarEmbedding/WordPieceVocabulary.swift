/// A WordPiece vocabulary and the greedy longest-match-first split of one word into pieces,
/// with the semantics of HuggingFace's `WordpieceTokenizer`.
///
/// Tokens are compared by their exact code points (UTF-8 bytes), as Python compares strings,
/// not by Swift's canonical equivalence.
package struct WordPieceVocabulary: Sendable {
    /// Words longer than this many code points become the unknown token.
    package static let maxInputCharactersPerWord = 100

    private let ids: [[UInt8]: Int32]

    /// The number of lines the vocabulary was built from (the model's vocabulary size).
    package let count: Int

    /// Builds the vocabulary from tokens in id order; a duplicate keeps its last id, as
    /// HuggingFace's `load_vocab` does.
    package init(tokens: [String]) {
        var ids: [[UInt8]: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (index, token) in tokens.enumerated() {
            ids[Array(token.utf8)] = Int32(index)
        }
        self.ids = ids
        self.count = tokens.count
    }

    /// Parses `vocab.txt` content: one token per line, the line number is the id.
    package init(fileContents: String) {
        var lines = fileContents.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last?.isEmpty == true {
            lines.removeLast()
        }
        self.init(tokens: lines)
    }

    /// The id of `token`, if it is in the vocabulary.
    package func id(of token: String) -> Int32? {
        self.ids[Array(token.utf8)]
    }

    /// Appends the WordPiece ids of one basic-tokenizer word to `output`; a word that cannot be
    /// covered by vocabulary pieces, or is too long, becomes `unknownID`.
    package func appendPieces(of word: [Unicode.Scalar], unknownID: Int32, to output: inout [Int32]) {
        if word.count > Self.maxInputCharactersPerWord {
            output.append(unknownID)
            return
        }
        // UTF-8 bytes of the word and the byte offset where each code point starts.
        var bytes: [UInt8] = []
        var offsets: [Int] = []
        bytes.reserveCapacity(word.count + 2)
        offsets.reserveCapacity(word.count + 1)
        for scalar in word {
            offsets.append(bytes.count)
            if let encoded = UTF8.encode(scalar) {
                bytes.append(contentsOf: encoded)
            }
        }
        offsets.append(bytes.count)

        let firstPiece = output.count
        var candidate: [UInt8] = []
        candidate.reserveCapacity(bytes.count + 2)
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int32?
            while start < end {
                candidate.removeAll(keepingCapacity: true)
                if start > 0 {
                    candidate.append(contentsOf: [0x23, 0x23])  // "##"
                }
                candidate.append(contentsOf: bytes[offsets[start]..<offsets[end]])
                if let id = self.ids[candidate] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let found else {
                output.removeSubrange(firstPiece...)
                output.append(unknownID)
                return
            }
            output.append(found)
            start = end
        }
    }
}
