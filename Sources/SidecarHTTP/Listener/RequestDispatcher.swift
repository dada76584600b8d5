import Logging
import NIOCore
import NIOHTTP1

/// Where an answer goes: the client connection. Event-loop confined.
package protocol ClientResponseSink: AnyObject {
    var isWritable: Bool { get }
    func sendHead(status: HTTPResponseStatus, headers: HTTPHeaders, contentLength: Int?)
    func sendBody(_ buffer: ByteBuffer, flush: Bool)
    /// Ends the response (flushes). `abort` closes the connection instead of ending cleanly,
    /// for a relayed body that cannot be completed.
    func sendEnd(trailers: HTTPHeaders?, abort: Bool)
}

/// A request being answered, as its connection sees it.
package protocol InFlightRequest: AnyObject {
    /// The client went away.
    func cancel()
    /// The client connection can take more bytes again (or not).
    func writabilityChanged(_ writable: Bool)
}

/// What the listener asks of the layers above, on the connection's event loop.
package protocol RequestDispatcher: Sendable {
    /// Starts answering `request` on `sink`; the answer may come at once or later.
    func dispatch(
        _ request: ReceivedRequest,
        connection: ListenerConnection,
        sink: any ClientResponseSink
    ) -> any InFlightRequest
    /// Answers a request the listener refused by itself.
    func reject(_ rejection: ListenerRejection, requestID: String, sink: any ClientResponseSink)
}

/// A complete request as read by the listener.
package struct ReceivedRequest {
    package var head: HTTPRequestHead
    package var body: ByteBuffer
    /// The client's `X-Request-Id` when sane, else a generated one.
    package var requestID: String
    package var receivedAt: ContinuousClock.Instant = .now
}

/// The connection a request arrived on.
package struct ListenerConnection {
    package var channel: any Channel
    /// The connection's coalesced first-byte timer, for the upstream call in flight.
    package var headTimer: CoalescedDeadlineTimer
}

/// Why the listener refused a request before reading it whole.
package enum ListenerRejection: Equatable {
    /// The body is larger than the limit.
    case bodyTooLarge(limit: Int)
    /// The bytes are not HTTP/1.1.
    case notHTTP(detail: String)
    /// The request line or the headers are over the decoder's limits.
    case headersTooLarge
    /// The request's head and body did not arrive within `requestRead`.
    case requestTimeout
    /// The request target is not a plain origin-form path (``RequestTarget``): why.
    case badTarget(reason: String)
}

/// The listener's bounds.
package struct ListenerLimits: Sendable {
    package var maxBodyBytes: Int
    /// The request decoder's bounds on the request target, each header field, all of them, and
    /// their count (past them: 431).
    package var decoder: NIOHTTPDecoderLimitConfiguration
    /// From a request's first byte to its last; past it, 408 and the connection closes.
    package var requestRead: TimeAmount
    /// A connection with no request in progress closes after this long.
    package var idleConnection: TimeAmount
    /// Client connections open at once; a connection beyond it is closed as it is accepted.
    package var maxConnections: Int
    package var logger: Logger

    package init(
        maxBodyBytes: Int,
        decoder: NIOHTTPDecoderLimitConfiguration = .init(),
        requestRead: TimeAmount = .seconds(30),
        idleConnection: TimeAmount = .seconds(75),
        maxConnections: Int = 4096,
        logger: Logger
    ) {
        self.maxBodyBytes = maxBodyBytes
        self.decoder = decoder
        self.requestRead = requestRead
        self.idleConnection = idleConnection
        self.maxConnections = maxConnections
        self.logger = logger
    }
}
