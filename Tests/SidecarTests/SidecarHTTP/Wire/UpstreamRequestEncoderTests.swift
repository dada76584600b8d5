import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import SidecarCore
@testable import SidecarHTTP

struct UpstreamRequestEncoderTests {
    /// Writes the parts through the encoder; returns everything it wrote, as text.
    private func encode(_ parts: [HTTPClientRequestPart]) throws -> String {
        let channel = EmbeddedChannel(handler: UpstreamRequestEncoder())
        for part in parts {
            try channel.writeOutbound(part)
        }
        var text = ""
        while var buffer = try channel.readOutbound(as: IOData.self).flatMap({
            if case .byteBuffer(let buffer) = $0 { return buffer } else { return nil }
        }) {
            text += buffer.readString(length: buffer.readableBytes) ?? ""
        }
        _ = try channel.finish()
        return text
    }

    @Test func aBodyWithItsLength() throws {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/chat/completions")
        head.headers = ["Host": "127.0.0.1:8080", "Content-Type": "application/json", "Content-Length": "2"]
        let text = try self.encode([.head(head), .body(.byteBuffer(ByteBuffer(string: "{}"))), .end(nil)])
        #expect(
            text == "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                + "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        )
    }

    @Test func noBody() throws {
        var get = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v1/models")
        get.headers = ["Host": "h"]
        #expect(try self.encode([.head(get), .end(nil)]) == "GET /v1/models HTTP/1.1\r\nHost: h\r\n\r\n")
        var post = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/x")
        post.headers = ["Host": "h"]
        #expect(
            try self.encode([.head(post), .end(nil)]) == "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
        )
    }

    @Test func chunkedBodyAndTrailers() throws {
        var head = HTTPRequestHead(version: .http1_1, method: .PUT, uri: "/u")
        head.headers = ["Transfer-Encoding": "chunked"]
        let parts: [HTTPClientRequestPart] = [
            .head(head), .body(.byteBuffer(ByteBuffer(string: "hello world, 17 b"))),
            .body(.byteBuffer(ByteBuffer())), .end(["X-T": "1"]),
        ]
        #expect(
            try self.encode(parts)
                == "PUT /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11\r\nhello world, 17 b\r\n0\r\nX-T: 1\r\n\r\n"
        )
    }

    @Test func fieldsThatCouldSplitTheRequestAreLeftOut() throws {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
        head.headers = ["Authorization": "Bearer sk-1\r\nX-Evil: 1", "Bad Name": "v", "Ok": "fine"]
        #expect(try self.encode([.head(head), .end(nil)]) == "GET / HTTP/1.1\r\nOk: fine\r\n\r\n")
    }

    @Test func aBodyTheHeadDidNotAnnounceFailsItsWrite() throws {
        let channel = EmbeddedChannel(handler: UpstreamRequestEncoder())
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")
        head.headers = ["Host": "h"]
        try channel.writeOutbound(HTTPClientRequestPart.head(head))
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: "x"))), promise: promise)
        #expect(throws: UpstreamRequestEncoder.BodyWithoutFramingError.self) { try promise.futureResult.wait() }
        _ = try channel.finish(acceptAlreadyClosed: true)
    }
}
