import HTTPTypes
import NIOCore
import NIOHTTP1
import SidecarHTTP

/// The one place a ``SidecarError`` becomes an OpenAI-shaped HTTP answer:
/// `{"error": {"message", "type", "code"}}` with its status and `Retry-After`.
enum ErrorResponse {
    static func parts(_ error: SidecarError, requestID: String) -> (HTTPHeaders, ByteBuffer) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: SidecarHeaders.requestID.rawName, value: requestID)
        if let retryAfter = error.retryAfter {
            // Whole seconds, rounded up, at least 1.
            let seconds = retryAfter.components.seconds + (retryAfter.components.attoseconds > 0 ? 1 : 0)
            headers.add(name: "Retry-After", value: String(max(1, seconds)))
        }
        if error.status == .unauthorized {
            headers.add(name: "WWW-Authenticate", value: #"Bearer realm="llm-sidecar""#)
        }
        return (headers, error.body.encoded())
    }

    static func status(_ error: SidecarError) -> HTTPResponseStatus {
        HTTPResponseStatus(statusCode: error.status.code, reasonPhrase: error.status.reasonPhrase)
    }

    /// Writes the error as the whole answer.
    static func send(_ error: SidecarError, requestID: String, to sink: any ClientResponseSink) {
        let (headers, body) = self.parts(error, requestID: requestID)
        sink.sendHead(status: self.status(error), headers: headers, contentLength: body.readableBytes)
        sink.sendBody(body, flush: false)
        sink.sendEnd(trailers: nil, abort: false)
    }
}
