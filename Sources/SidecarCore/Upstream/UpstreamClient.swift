import HTTPTypes
import NIOCore

/// One request to an upstream, fully resolved: absolute URL, headers to send, buffered body.
public struct UpstreamRequest: Sendable {
    public var upstream: String
    public var method: HTTPRequest.Method
    public var url: String
    public var headers: HTTPFields
    public var body: ByteBuffer?

    public init(upstream: String, method: HTTPRequest.Method, url: String, headers: HTTPFields, body: ByteBuffer?) {
        self.upstream = upstream
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

/// An upstream's answer: status and headers at once, the body as it arrives.
public struct UpstreamResponse: Sendable {
    public var status: HTTPResponse.Status
    public var headers: HTTPFields
    public var body: UpstreamBody

    public init(status: HTTPResponse.Status, headers: HTTPFields, body: UpstreamBody) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// The streamed body of an ``UpstreamResponse``. Dropping it before the end cancels the request.
public struct UpstreamBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    private let base: any AsyncSequence<ByteBuffer, any Error> & Sendable

    public init(_ base: some AsyncSequence<ByteBuffer, any Error> & Sendable) {
        self.base = base
    }

    /// A body that is already complete.
    public init(buffer: ByteBuffer) {
        self.init(SingleBufferSequence(buffer: buffer))
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: any AsyncIteratorProtocol<ByteBuffer, any Error>

        public mutating func next() async throws -> ByteBuffer? {
            try await self.base.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: self.base.makeAsyncIterator())
    }

    /// Reads the whole body, failing with ``UpstreamError`` past `limit` bytes.
    public func collect(upTo limit: Int, upstream: String) async throws -> ByteBuffer {
        var collected = ByteBuffer()
        for try await var chunk in self {
            guard collected.readableBytes + chunk.readableBytes <= limit else {
                throw UpstreamError(.responseTooLarge, upstream: upstream, detail: "response body over \(limit) bytes")
            }
            collected.writeBuffer(&chunk)
        }
        return collected
    }
}

struct SingleBufferSequence: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let buffer: ByteBuffer

    struct AsyncIterator: AsyncIteratorProtocol {
        var buffer: ByteBuffer?

        mutating func next() async throws -> ByteBuffer? {
            defer { self.buffer = nil }
            return self.buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(buffer: self.buffer) }
}

/// Sends one request to one upstream. The production implementation is ``HTTPUpstreamClient``.
///
/// Implementations throw ``UpstreamError`` for failures before a response head arrives; a
/// non-2xx status is a response, not an error.
public protocol UpstreamClient: Sendable {
    func send(_ request: UpstreamRequest, deadline: ContinuousClock.Instant) async throws -> UpstreamResponse
}
