import NIOCore
import NIOHTTP1
import Testing

@testable import SidecarCore
@testable import SidecarHTTP

struct HTTPResponseFramerTests {
    private let allocator = ByteBufferAllocator()

    private func head(
        _ status: HTTPResponseStatus = .ok,
        _ headers: HTTPHeaders = ["Content-Type": "application/json"],
        contentLength: Int? = 12,
        close: Bool = false,
        isHead: Bool = false
    ) -> (String, HTTPResponseFramer.Framing) {
        var framer = HTTPResponseFramer()
        let buffer = framer.head(
            status: status,
            headers: headers,
            contentLength: contentLength,
            closeConnection: close,
            isHeadRequest: isHead,
            allocator: self.allocator
        )
        return (String(buffer: buffer), framer.framing)
    }

    @Test func aKnownLengthIsSentAsContentLength() {
        let (text, framing) = self.head()
        #expect(text == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n")
        #expect(framing == .length)
    }

    @Test func anUnknownLengthIsChunkedAndCloseIsAnnounced() {
        let (text, framing) = self.head(.init(statusCode: 429), [:], contentLength: nil, close: true)
        #expect(text == "HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        #expect(framing == .chunked)
    }

    @Test func responsesWithoutABodyGetNoFraming() {
        #expect(self.head(.noContent, [:], contentLength: nil) == ("HTTP/1.1 204 No Content\r\n\r\n", .none))
        #expect(self.head(.notModified, [:], contentLength: 5).0 == "HTTP/1.1 304 Not Modified\r\n\r\n")
        // HEAD: the length of the body a GET would get, and no body.
        let (text, framing) = self.head(.ok, [:], contentLength: 7, isHead: true)
        #expect(text == "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n")
        #expect(framing == .none)
    }

    @Test func headersThatCouldSplitTheResponseAreLeftOut() {
        let headers: HTTPHeaders = [
            "X-Model-Used": "evil\r\nSet-Cookie: a=b",
            "X-Bad Name": "v",
            "": "empty name",
            "X-Nul": "a\u{0}b",
            "X-Fine": "caf\u{e9} \ttab",
        ]
        let (text, _) = self.head(.ok, headers, contentLength: 0)
        #expect(text == "HTTP/1.1 200 OK\r\nX-Fine: caf\u{e9} \ttab\r\nContent-Length: 0\r\n\r\n")
        let status = HTTPResponseStatus(statusCode: 599, reasonPhrase: "Odd\r\nX: y")
        #expect(self.head(status, [:], contentLength: 0).0 == "HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n")
    }

    @Test func chunksAndTrailers() {
        #expect(String(buffer: HTTPWireFormat.chunkHeader(300, allocator: self.allocator)) == "12c\r\n")
        let trailers: HTTPHeaders = ["X-Query-Cost": "0.000097500", "X-Bad": "a\nb"]
        let end = HTTPWireFormat.lastChunk(trailers: trailers, allocator: self.allocator)
        #expect(String(buffer: end) == "0\r\nX-Query-Cost: 0.000097500\r\n\r\n")
        #expect(String(buffer: HTTPWireFormat.lastChunk(trailers: nil, allocator: self.allocator)) == "0\r\n\r\n")
    }

    @Test func tokenTableMatchesRFC9110() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for byte in UInt8.min...UInt8.max {
            let name = String(decoding: [byte], as: UTF8.self)
            #expect(HTTPWireFormat.isToken(name) == tchar.contains(byte), "byte \(byte)")
        }
        #expect(!HTTPWireFormat.isToken(""))
        #expect(HTTPWireFormat.isToken("X-Request-Id"))
    }
}
