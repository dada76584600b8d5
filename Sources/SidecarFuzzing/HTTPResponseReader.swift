/// Reads back what the listener wrote as HTTP/1.1 responses, strictly: a status line, header
/// fields that are tokens and clean values, one framing (`Content-Length` or chunked) for a
/// response with a body, and nothing after a response that closes the connection.
///
/// Which responses have a body depends on the request (none for `HEAD`): ``FakeDispatcher``
/// says so in `x-fuzz-head` (`1`, `0`, or `?` for a rejection, whose request may not have
/// been read; then a body is read unless the next response or the end follows).
/// `x-fuzz-abort: 1` marks an answer cut short: it ends the output, anywhere in its body.
package struct HTTPResponseReader {
    package struct Response {
        package var status: Int
        package var fields: [(name: String, value: String)]
        package var body: [UInt8]

        package func field(_ name: String) -> String? {
            self.fields.last { $0.name.lowercased() == name }?.value
        }
    }

    private let bytes: [UInt8]
    private var index = 0

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    package static func read(_ bytes: [UInt8]) throws(FuzzFailure) -> [Response] {
        var reader = HTTPResponseReader(bytes: bytes)
        var responses: [Response] = []
        while reader.index < bytes.count {
            let response = try reader.response()
            responses.append(response)
            let closes = response.field("connection")?.lowercased() == "close" || response.field("x-fuzz-abort") == "1"
            if closes && reader.index < bytes.count {
                throw reader.failure("\(bytes.count - reader.index) bytes after a response that closed the connection")
            }
        }
        return responses
    }

    private mutating func response() throws(FuzzFailure) -> Response {
        let statusLine = Array(try self.line())
        let prefix = Array("HTTP/1.1 ".utf8)
        guard statusLine.count >= 13, statusLine.starts(with: prefix), statusLine[12] == UInt8(ascii: " "),
            statusLine[9..<12].allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let status = Int(String(decoding: statusLine[9..<12], as: UTF8.self))
        else {
            throw self.failure("a bad status line \(String(reflecting: String(decoding: statusLine, as: UTF8.self)))")
        }
        var fields: [(name: String, value: String)] = []
        while true {
            let line = try self.line()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0,
                line[..<colon].allSatisfy(Self.isTokenCharacter),
                line[(colon + 1)...].allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) })
            else {
                throw self.failure("a bad header line \(String(reflecting: String(decoding: line, as: UTF8.self)))")
            }
            let value = Self.trimmed(String(decoding: line[(colon + 1)...], as: UTF8.self))
            fields.append((name: String(decoding: line[..<colon], as: UTF8.self), value: value))
        }
        var response = Response(status: status, fields: fields, body: [])
        let framing = ["content-length", "transfer-encoding"].map { name in
            fields.count(where: { $0.name.lowercased() == name })
        }
        if status < 200 {
            guard status == 100, framing == [0, 0] else { throw self.failure("an interim \(status) with framing") }
            return response
        }
        guard framing == [1, 0] || framing == [0, 1] else { throw self.failure("framing fields \(framing)") }
        let aborted = response.field("x-fuzz-abort") == "1"
        switch response.field("x-fuzz-head") {
        case "1": return response
        case "0": break
        case "?":
            if self.index == self.bytes.count || self.bytes[self.index...].starts(with: prefix) { return response }
        default: throw self.failure("an answer the dispatcher did not write")
        }
        if aborted {
            // Cut short: whatever follows is what was sent of the body.
            response.body = Array(self.bytes[self.index...])
            self.index = self.bytes.count
            return response
        }
        if let length = response.field("content-length") {
            guard let count = Int(length), count >= 0, self.index + count <= self.bytes.count else {
                throw self.failure("Content-Length \(length) with \(self.bytes.count - self.index) bytes left")
            }
            response.body = Array(self.bytes[self.index..<(self.index + count)])
            self.index += count
            return response
        }
        guard response.field("transfer-encoding")?.lowercased() == "chunked" else {
            throw self.failure("a transfer coding other than chunked")
        }
        response.body = try self.chunkedBody()
        return response
    }

    private mutating func chunkedBody() throws(FuzzFailure) -> [UInt8] {
        var body: [UInt8] = []
        while true {
            let sizeLine = try self.line()
            guard !sizeLine.isEmpty, sizeLine.count <= 16,
                let size = Int(String(decoding: sizeLine, as: UTF8.self), radix: 16)
            else { throw self.failure("a bad chunk size line") }
            if size == 0 {
                // Trailers (none expected), then the blank line.
                var trailer = try self.line()
                while !trailer.isEmpty { trailer = try self.line() }
                return body
            }
            guard self.index + size + 2 <= self.bytes.count,
                self.bytes[self.index + size] == 0x0D, self.bytes[self.index + size + 1] == 0x0A
            else { throw self.failure("a chunk of \(size) bytes cut short") }
            body += self.bytes[self.index..<(self.index + size)]
            self.index += size + 2
        }
    }

    /// The bytes up to the next CR LF (which must come).
    private mutating func line() throws(FuzzFailure) -> ArraySlice<UInt8> {
        var end = self.index
        while end + 1 < self.bytes.count {
            if self.bytes[end] == 0x0D {
                guard self.bytes[end + 1] == 0x0A else { throw self.failure("a bare CR") }
                let line = self.bytes[self.index..<end]
                guard !line.contains(0x0A) else { throw self.failure("a bare LF") }
                self.index = end + 2
                return line
            }
            end += 1
        }
        throw self.failure("a line without its CR LF")
    }

    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
        }
    }

    private static func trimmed(_ text: String) -> String {
        String(text.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }

    private func failure(_ message: String) -> FuzzFailure {
        FuzzFailure("http-request", "response stream: \(message) at byte \(self.index)")
    }
}
