import Foundation

/// BERT's "basic" pre-tokenizer, with the semantics of HuggingFace's `BasicTokenizer`.
///
/// It removes control characters, normalises whitespace, puts spaces around CJK ideographs,
/// applies NFC, splits on whitespace, lower-cases (code point by code point, as HuggingFace does),
/// strips accents (NFD, then drops nonspacing marks) and splits every punctuation character
/// into its own word. The output words go on to WordPiece.
package struct BertBasicTokenizer: Sendable {
    /// Lower-case each word (`do_lower_case`).
    package var lowercase: Bool
    /// Strip accents (`strip_accents`; HuggingFace defaults it to `lowercase`).
    package var stripAccents: Bool
    /// Surround CJK ideographs with spaces (`tokenize_chinese_chars`).
    package var splitChineseCharacters: Bool

    package init(lowercase: Bool = true, stripAccents: Bool? = nil, splitChineseCharacters: Bool = true) {
        self.lowercase = lowercase
        self.stripAccents = stripAccents ?? lowercase
        self.splitChineseCharacters = splitChineseCharacters
    }

    /// Splits `text` into words, each a sequence of Unicode scalars (Python code points).
    package func words(_ text: String) -> [[Unicode.Scalar]] {
        var cleaned = self.clean(text)
        if !cleaned.allSatisfy(\.isASCII) {
            cleaned = Self.normalized(cleaned, decomposed: false)
        }
        var output: [[Unicode.Scalar]] = []
        for var word in Self.splitOnWhitespace(cleaned) {
            if self.lowercase {
                word = Self.lowercased(word)
            }
            if self.stripAccents, !word.allSatisfy(\.isASCII) {
                word = Self.normalized(word, decomposed: true).filter {
                    $0.properties.generalCategory != .nonspacingMark
                }
            }
            Self.splitOnPunctuation(word, into: &output)
        }
        return output
    }

    /// Drops NUL, U+FFFD and control characters, maps whitespace to a space and surrounds CJK
    /// ideographs with spaces.
    private func clean(_ text: String) -> [Unicode.Scalar] {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            if scalar.value == 0 || scalar.value == 0xFFFD || Self.isControl(scalar) {
                continue
            }
            if Self.isBertWhitespace(scalar) {
                scalars.append(" ")
            } else if self.splitChineseCharacters, Self.isChineseCharacter(scalar) {
                scalars.append(" ")
                scalars.append(scalar)
                scalars.append(" ")
            } else {
                scalars.append(scalar)
            }
        }
        return scalars
    }

    private static func normalized(_ scalars: [Unicode.Scalar], decomposed: Bool) -> [Unicode.Scalar] {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        let string = String(view)
        let result =
            decomposed ? string.decomposedStringWithCanonicalMapping : string.precomposedStringWithCanonicalMapping
        return Array(result.unicodeScalars)
    }

    /// Splits like Python's `str.split()`, which drops empty words.
    private static func splitOnWhitespace(_ scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for scalar in scalars {
            if isPythonWhitespace(scalar) {
                if !current.isEmpty {
                    words.append(current)
                    current.removeAll(keepingCapacity: true)
                }
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty {
            words.append(current)
        }
        return words
    }

    private static func splitOnPunctuation(_ word: [Unicode.Scalar], into output: inout [[Unicode.Scalar]]) {
        var current: [Unicode.Scalar] = []
        for scalar in word {
            if isPunctuation(scalar) {
                if !current.isEmpty {
                    output.append(current)
                    current = []
                }
                output.append([scalar])
            } else {
                current.append(scalar)
            }
        }
        if !current.isEmpty {
            output.append(current)
        }
    }

    /// Lower-cases one code point at a time with full Unicode mappings (`"İ"` becomes two).
    ///
    /// Per code point, not Python's whole-string `str.lower()`: HuggingFace's `tokenize()`
    /// lower-cases the text one character at a time before BERT sees it, so a capital sigma
    /// always becomes `σ`, never the final `ς` (checked against transformers 4.46).
    package static func lowercased(_ word: [Unicode.Scalar]) -> [Unicode.Scalar] {
        if word.allSatisfy(\.isASCII) {
            return word.map { scalar in
                (0x41...0x5A).contains(scalar.value) ? Unicode.Scalar(UInt8(scalar.value) + 32) : scalar
            }
        }
        var result: [Unicode.Scalar] = []
        result.reserveCapacity(word.count)
        for scalar in word {
            result.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
        }
        return result
    }

    /// BERT's `_is_whitespace`: space, tab, newline, carriage return, or category Zs.
    package static func isBertWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x20, 0x09, 0x0A, 0x0D: true
        default: scalar.properties.generalCategory == .spaceSeparator
        }
    }

    /// Python's `str.isspace()`, which `str.split()` splits on.
    package static func isPythonWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        (0x1C...0x1F).contains(scalar.value) || scalar.properties.isWhitespace
    }

    /// BERT's `_is_control`: category C* except tab, newline and carriage return.
    package static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A, 0x0D: return false
        case 0x20...0x7E: return false
        default:
            switch scalar.properties.generalCategory {
            case .control, .format, .surrogate, .privateUse, .unassigned: return true
            default: return false
            }
        }
    }

    /// BERT's `_is_punctuation`: the ASCII symbol ranges, or category P*.
    package static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 33...47, 58...64, 91...96, 123...126: return true
        case 0..<128: return false
        default:
            switch scalar.properties.generalCategory {
            case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
                .initialPunctuation, .finalPunctuation, .otherPunctuation:
                return true
            default:
                return false
            }
        }
    }

    /// BERT's `_is_chinese_char`: the CJK Unified Ideographs blocks and extensions.
    package static func isChineseCharacter(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
            0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default:
            return false
        }
    }
}
