import NIOCore

/// The checks the decode stage adds when `JSONDecoder` reads a body the single-pass parser
/// declined, so the sidecar and the upstream read the same request. Found by the
/// `openai-request` fuzz targets.
///
/// - `JSONDecoder` does not check what it does not read: a bad escape (`"\u12"`), a leading
///   zero or a trailing comma in a member the view ignores passes, and such a body then fails
///   in the rewrite or upstream. ``isValidJSON(_:)`` checks the whole body.
/// - `JSONDecoder` keeps the first of a repeated key and most upstream servers the last, so
///   `{"model":"cheap","model":"dear"}` would be routed, priced and cached as one request and
///   answered as another. ``repeatedMember(in:)`` finds such a member among those the view reads.
extension OpenAIRequestParser {
    static let viewMembers: Set<String> = [
        "model", "stream", "stream_options", "messages", "prompt", "tools", "functions", "max_tokens",
        "max_completion_tokens",
    ]

    /// Whether the body is one valid JSON value (RFC 8259: escapes, UTF-8, numbers, commas),
    /// nested at most ``maxDepth`` deep, with only white space around it.
    package static func isValidJSON(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { raw in
            var parser = OpenAIRequestParser(bytes: raw.assumingMemoryBound(to: UInt8.self))
            parser.skipSpace()
            guard parser.skipValue() else { return false }
            parser.skipSpace()
            return parser.index == parser.bytes.count
        }
    }

    /// The first repeated member the view reads (`model`, `messages[1].content`...), keys
    /// compared unescaped; `nil` when there is none or the body is not JSON.
    package static func repeatedMember(in buffer: ByteBuffer) -> String? {
        buffer.withUnsafeReadableBytes { raw in
            var parser = OpenAIRequestParser(bytes: raw.assumingMemoryBound(to: UInt8.self))
            var repeated: String?
            parser.skipSpace()
            guard parser.peek == UInt8(ascii: "{") else { return nil }
            var seen: Set<String> = []
            _ = parser.object { parser, key in
                guard Self.viewMembers.contains(key) else { return parser.skipValue() }
                guard seen.insert(key).inserted else {
                    repeated = key
                    return false
                }
                switch key {
                case "stream_options":
                    return parser.uniqueMembers(["include_usage"], path: key, &repeated)
                case "messages":
                    return parser.eachElement(path: key) { parser, path in parser.message(path: path, &repeated) }
                default:
                    return parser.skipValue()
                }
            }
            return repeated
        }
    }

    private mutating func message(path: String, _ repeated: inout String?) -> Bool {
        guard self.peek == UInt8(ascii: "{") else { return self.skipValue() }
        var seen: Set<String> = []
        return self.object { parser, key in
            guard key == "role" || key == "content" else { return parser.skipValue() }
            guard seen.insert(key).inserted else {
                repeated = "\(path).\(key)"
                return false
            }
            guard key == "content" else { return parser.skipValue() }
            return parser.eachElement(path: "\(path).content") { parser, path in
                parser.uniqueMembers(["type", "text"], path: path, &repeated)
            }
        }
    }

    /// Each element of an array (anything else is skipped), with its path.
    private mutating func eachElement(path: String, _ element: (inout OpenAIRequestParser, String) -> Bool) -> Bool {
        guard self.peek == UInt8(ascii: "[") else { return self.skipValue() }
        var index = 0
        return self.array { parser in
            defer { index += 1 }
            return element(&parser, "\(path)[\(index)]")
        }
    }

    /// An object whose `read` members appear once each (anything else is skipped).
    private mutating func uniqueMembers(_ read: Set<String>, path: String, _ repeated: inout String?) -> Bool {
        guard self.peek == UInt8(ascii: "{") else { return self.skipValue() }
        var seen: Set<String> = []
        return self.object { parser, key in
            if read.contains(key) && !seen.insert(key).inserted {
                repeated = "\(path).\(key)"
                return false
            }
            return parser.skipValue()
        }
    }
}
