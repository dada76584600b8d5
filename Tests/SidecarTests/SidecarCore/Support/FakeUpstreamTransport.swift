import NIOCore
import NIOHTTP1

@testable import SidecarCore
@testable import SidecarHTTP

/// An in-memory upstream transport: records every request sent and lets a test answer each one
/// (head, chunks, end or failure) whenever it likes. No socket; event-loop confined like the pool.
final class FakeUpstreamTransport: UpstreamTransport {
    final class Call: UpstreamCallHandle {
        let request: UpstreamWireRequest
        fileprivate(set) var delegate: (any UpstreamResponseDelegate)?
        private(set) var isCancelled = false
        private(set) var isReadingPaused = false

        init(request: UpstreamWireRequest, delegate: any UpstreamResponseDelegate) {
            self.request = request
            self.delegate = delegate
        }

        var body: String { self.request.body.map { String(buffer: $0) } ?? "" }

        func cancel() {
            self.isCancelled = true
            self.delegate = nil
        }

        func setReadingPaused(_ paused: Bool) {
            self.isReadingPaused = paused
        }

        func head(_ code: Int, _ headers: [(String, String)] = [("Content-Type", "application/json")]) {
            var head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: code))
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            self.delegate?.upstreamDidReceiveHead(head)
        }

        func chunk(_ text: String) {
            self.delegate?.upstreamDidReceiveBody(ByteBuffer(string: text))
        }

        func end() {
            let delegate = self.delegate
            self.delegate = nil
            delegate?.upstreamDidFinish(trailers: nil)
        }

        func fail(_ error: UpstreamError) {
            let delegate = self.delegate
            self.delegate = nil
            delegate?.upstreamDidFail(error)
        }

        /// A whole JSON answer.
        func answer(_ code: Int, _ json: String) {
            self.head(code)
            self.chunk(json)
            self.end()
        }
    }

    private(set) var calls: [Call] = []

    var last: Call? { self.calls.last }

    func send(_ request: UpstreamWireRequest, delegate: any UpstreamResponseDelegate) -> any UpstreamCallHandle {
        let call = Call(request: request, delegate: delegate)
        self.calls.append(call)
        return call
    }
}
