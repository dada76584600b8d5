import NIOCore
import NIOHTTP1
import SidecarHTTP

/// The HTTP target's dispatcher: answers each request at once or when told
/// (``answerPending()``), with headers that say how to read the answer back, and records what
/// the listener handed it. Event-loop confined (an `EmbeddedChannel`), hence unchecked.
package final class FakeDispatcher: RequestDispatcher, @unchecked Sendable {
    /// How the answers are framed and ended.
    package struct Behaviour {
        /// Hold answers until ``answerPending()`` instead of answering inside `dispatch`.
        package var deferAnswers = false
        /// Chunked bodies instead of `Content-Length`.
        package var chunked = false
        /// End every `abortEvery`-th answer with `abort` (0: never).
        package var abortEvery = 0
        /// Answer held requests even once cancelled (a responder that does not stop in time).
        package var answerCancelled = false

        package init() {}
    }

    private struct Pending {
        var request: ReceivedRequest
        var sink: any ClientResponseSink
        var inFlight: FakeInFlightRequest
    }

    /// The connection's channel, to tell whether a rejection comes after it closed.
    package var channel: (any Channel)?
    private let behaviour: Behaviour
    private let maxBodyBytes: Int
    private var pending: [Pending] = []
    private var answered = 0
    /// The body each answer carried, by sequence number (1-based; an aborted answer has none).
    package private(set) var bodies: [Int: [UInt8]] = [:]
    /// The answers ended with `abort`.
    package private(set) var aborted: Set<Int> = []
    /// Requests the listener handed over that it should not have; checked by the caller.
    package private(set) var violations: [String] = []

    package init(behaviour: Behaviour, maxBodyBytes: Int) {
        self.behaviour = behaviour
        self.maxBodyBytes = maxBodyBytes
    }

    package func dispatch(
        _ request: ReceivedRequest,
        connection: ListenerConnection,
        sink: any ClientResponseSink
    ) -> any InFlightRequest {
        if !connection.channel.isActive {
            self.violations.append("a request dispatched after its connection closed")
        }
        if request.body.readableBytes > self.maxBodyBytes {
            self.violations.append("a body of \(request.body.readableBytes) bytes over the \(self.maxBodyBytes) limit")
        }
        let framing = request.head.headers["transfer-encoding"]
        if framing.isEmpty, let length = request.head.headers.first(name: "content-length").flatMap({ Int($0) }),
            length != request.body.readableBytes
        {
            self.violations.append("Content-Length \(length) but a body of \(request.body.readableBytes) bytes")
        }
        if !self.pending.isEmpty {
            self.violations.append("a request dispatched while another is unanswered")
        }
        let inFlight = FakeInFlightRequest()
        let pending = Pending(request: request, sink: sink, inFlight: inFlight)
        if self.behaviour.deferAnswers {
            self.pending.append(pending)
        } else {
            self.answer(pending)
        }
        return inFlight
    }

    package func reject(_ rejection: ListenerRejection, requestID: String, sink: any ClientResponseSink) {
        if self.channel?.isActive == false {
            self.violations.append("a rejection (\(rejection)) answered after the connection closed")
        }
        if case .bodyTooLarge(let limit) = rejection, limit != self.maxBodyBytes {
            self.violations.append("rejected for a \(limit) byte limit, not \(self.maxBodyBytes)")
        }
        self.answered += 1
        let body = Array("rejected \(self.answered)\n".utf8)
        self.send(sequence: self.answered, status: .badRequest, head: "?", body: body, sink: sink)
    }

    /// Answers the held requests, in order (a cancelled one is dropped, as a responder that
    /// stops would, unless ``Behaviour/answerCancelled``).
    package func answerPending() {
        while !self.pending.isEmpty {
            let next = self.pending.removeFirst()
            if !next.inFlight.cancelled || self.behaviour.answerCancelled { self.answer(next) }
        }
    }

    /// Requests dispatched and neither answered nor cancelled.
    package var abandoned: Int {
        self.pending.count(where: { !$0.inFlight.cancelled })
    }

    private func answer(_ pending: Pending) {
        self.answered += 1
        let head = pending.request.head.method == .HEAD ? "1" : "0"
        let body = Array("answer \(self.answered) ".utf8) + Array(pending.request.body.readableBytesView)
        self.send(sequence: self.answered, status: .ok, head: head, body: body, sink: pending.sink)
    }

    private func send(
        sequence: Int,
        status: HTTPResponseStatus,
        head: String,
        body: [UInt8],
        sink: any ClientResponseSink
    ) {
        let abort = self.behaviour.abortEvery > 0 && sequence % self.behaviour.abortEvery == 0
        var headers = HTTPHeaders()
        headers.add(name: "x-fuzz-seq", value: String(sequence))
        headers.add(name: "x-fuzz-head", value: head)
        headers.add(name: "x-fuzz-abort", value: abort ? "1" : "0")
        sink.sendHead(status: status, headers: headers, contentLength: self.behaviour.chunked ? nil : body.count)
        // In two writes, so a chunked body has two chunks (and an empty write is tried).
        let half = body.count / 2
        sink.sendBody(ByteBuffer(bytes: body[..<half]), flush: false)
        if abort {
            self.aborted.insert(sequence)
        } else {
            sink.sendBody(ByteBuffer(bytes: body[half...]), flush: true)
            self.bodies[sequence] = body
        }
        sink.sendEnd(trailers: nil, abort: abort)
    }
}

/// A request the fake dispatcher holds; records whether the listener cancelled it.
package final class FakeInFlightRequest: InFlightRequest {
    package private(set) var cancelled = false

    package func cancel() {
        self.cancelled = true
    }

    package func writabilityChanged(_ writable: Bool) {}
}
