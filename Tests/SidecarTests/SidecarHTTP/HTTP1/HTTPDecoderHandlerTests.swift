import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import SidecarCore
@testable import SidecarHTTP
@testable import SidecarOpenAI

/// Records what the decoder handler passes on; can act from inside a decode.
private final class Recorder<Part>: ChannelInboundHandler {
    typealias InboundIn = Part
    var parts: [Part] = []
    var errors: [any Error] = []
    var inactive = 0
    var onPart: ((Part, ChannelHandlerContext) -> Void)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        self.parts.append(part)
        self.onPart?(part, context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.errors.append(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.inactive += 1
    }
}

struct HTTPDecoderHandlerTests {
    private func requestChannel() throws -> (EmbeddedChannel, Recorder<HTTPServerRequestPart>) {
        let recorder = Recorder<HTTPServerRequestPart>()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            HTTPDecoderHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes))
        )
        try channel.pipeline.syncOperations.addHandler(recorder)
        return (channel, recorder)
    }

    private func responseChannel() throws -> (EmbeddedChannel, Recorder<HTTPClientResponsePart>) {
        let recorder = Recorder<HTTPClientResponsePart>()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            UpstreamResponseDecoderHandler(
                HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .drop)
            )
        )
        try channel.pipeline.syncOperations.addHandler(recorder)
        return (channel, recorder)
    }

    private static func summary(_ parts: [HTTPServerRequestPart]) -> [String] {
        parts.map {
            switch $0 {
            case .head(let head): "head \(head.method) \(head.uri)"
            case .body(let body): "body \(String(buffer: body))"
            case .end: "end"
            }
        }
    }

    private static func summary(_ parts: [HTTPClientResponsePart]) -> [String] {
        parts.map {
            switch $0 {
            case .head(let head): "head \(head.status.code)"
            case .body(let body): "body \(String(buffer: body))"
            case .end: "end"
            }
        }
    }

    private static func joinedBodies(_ lines: [String]) -> [String] {
        var out: [String] = []
        for line in lines {
            if line.hasPrefix("body "), let last = out.last, last.hasPrefix("body ") {
                out[out.count - 1] = last + line.dropFirst(5)
            } else {
                out.append(line)
            }
        }
        return out
    }

    @Test func pipelinedRequestsSplitAnywhereDecodeTheSame() throws {
        let wire = Array(
            ("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                + "GET /b HTTP/1.1\r\nHost: h\r\n\r\n").utf8
        )
        let expected = ["head POST /a", "body hello", "end", "head GET /b", "end"]
        for split in [1, 3, 7, 40, wire.count] {
            let (channel, recorder) = try self.requestChannel()
            var index = 0
            while index < wire.count {
                let end = min(index + split, wire.count)
                try channel.writeInbound(ByteBuffer(bytes: wire[index..<end]))
                index = end
            }
            #expect(Self.joinedBodies(Self.summary(recorder.parts)) == expected, "split \(split)")
            _ = try? channel.finish()
        }
    }

    @Test func closingFromInsideADecodeIsSafe() throws {
        let (channel, recorder) = try self.requestChannel()
        recorder.onPart = { part, context in
            if case .end = part { context.close(promise: nil) }
        }
        let wire = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n"
        try channel.writeInbound(ByteBuffer(string: wire))
        #expect(Self.summary(recorder.parts).first == "head GET /a")
        #expect(recorder.inactive == 1)
        #expect(recorder.errors.isEmpty)
    }

    @Test func aParseErrorIsReportedOnceAndLaterInputIgnored() throws {
        let (channel, recorder) = try self.requestChannel()
        try channel.writeInbound(ByteBuffer(string: "NOT HTTP AT ALL\r\n\r\n"))
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(recorder.errors.count == 1)
        #expect(recorder.errors.first is HTTPParserError)
        #expect(recorder.parts.isEmpty)
        _ = try? channel.finish()
    }

    /// After an upgrade request the decoder stops; what follows is not kept without bound.
    @Test func bytesLeftUndecodedAreBounded() throws {
        let (channel, recorder) = try self.requestChannel()
        let upgrade = "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        try channel.writeInbound(ByteBuffer(string: upgrade))
        #expect(Self.summary(recorder.parts) == ["head GET /", "end"])
        let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
        for _ in 0..<20 {
            try channel.writeInbound(chunk)
        }
        #expect(recorder.errors.count == 1)
        #expect(recorder.errors.first is HTTPDecoderHandler.UndecodedBytesError)
        _ = try? channel.finish()
    }

    @Test func aCloseDelimitedBodyEndsAtEndOfInput() throws {
        let (channel, recorder) = try self.responseChannel()
        try channel.writeOutbound(HTTPClientRequestPart.head(.init(version: .http1_1, method: .GET, uri: "/")))
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"))
        #expect(Self.summary(recorder.parts) == ["head 200", "body all of it"])
        channel.pipeline.fireChannelInactive()
        #expect(Self.summary(recorder.parts) == ["head 200", "body all of it", "end"])
        #expect(recorder.errors.isEmpty)
    }

    @Test func aResponseCutShortIsAnError() throws {
        let (channel, recorder) = try self.responseChannel()
        try channel.writeOutbound(HTTPClientRequestPart.head(.init(version: .http1_1, method: .GET, uri: "/")))
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"))
        channel.pipeline.fireChannelInactive()
        #expect(recorder.errors.count == 1)
        #expect(!Self.summary(recorder.parts).contains("end"))
    }

    /// A request written from inside a decode (the pool starting the next call when a response
    /// ends) still tells the decoder its method: the answer to HEAD has no body.
    @Test func aHeadRequestWrittenDuringADecodeIsSeenByTheDecoder() throws {
        let (channel, recorder) = try self.responseChannel()
        recorder.onPart = { part, context in
            if case .end = part, recorder.parts.count == 3 {
                let head = HTTPRequestHead(version: .http1_1, method: .HEAD, uri: "/next")
                context.write(NIOAny(HTTPClientRequestPart.head(head)), promise: nil)
            }
        }
        try channel.writeOutbound(HTTPClientRequestPart.head(.init(version: .http1_1, method: .GET, uri: "/")))
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"))
        #expect(Self.summary(recorder.parts) == ["head 200", "body ok", "end", "head 200", "end"])
        #expect(recorder.errors.isEmpty)
        _ = try? channel.finish()
    }
}
