import NIOCore
import NIOHTTP1

@testable import SidecarCore
@testable import SidecarHTTP

/// A client connection in memory: records the answer as the listener would frame it.
final class FakeClientSink: ClientResponseSink {
    var isWritable = true
    private(set) var status: HTTPResponseStatus?
    private(set) var headers = HTTPHeaders()
    private(set) var contentLength: Int?
    private(set) var body = ByteBuffer()
    private(set) var trailers: HTTPHeaders?
    private(set) var ended = false
    private(set) var aborted = false
    /// Each body write, in order.
    private(set) var writes: [String] = []
    /// Runs after each body write (a client that goes away while it is written to).
    var onWrite: (() -> Void)?

    var text: String { String(buffer: self.body) }

    func sendHead(status: HTTPResponseStatus, headers: HTTPHeaders, contentLength: Int?) {
        precondition(self.status == nil, "a second head")
        self.status = status
        self.headers = headers
        self.contentLength = contentLength
    }

    func sendBody(_ buffer: ByteBuffer, flush: Bool) {
        precondition(self.status != nil && !self.ended, "a body write outside a response")
        var buffer = buffer
        self.writes.append(String(buffer: buffer))
        self.body.writeBuffer(&buffer)
        self.onWrite?()
    }

    func sendEnd(trailers: HTTPHeaders?, abort: Bool) {
        precondition(!self.ended, "a second end")
        self.trailers = trailers
        self.ended = true
        self.aborted = abort
    }
}
