import SidecarFuzzing
import Testing

/// The `http-request` fuzz target's invariants on seeded inputs (scripts/fuzz.sh runs it under
/// libFuzzer), and the inputs it found, replayed. Each input is the target's four-byte header
/// (body limit, answer timing and framing, how the connection ends) then the client's bytes.
struct SidecarConnectionHandlerFuzzTests {
    @Test func seededClientBytesGetWellFormedAnswers() {
        FuzzProperty.check(.httpRequest, count: 1500, seed: 1)
    }

    /// A 413 closes the connection; the request pipelined behind it, decoded from the same
    /// read, was dispatched anyway (an upstream call no one could receive, never cancelled).
    @Test func nothingIsDispatchedAfterTheResponseThatClosedTheConnection() {
        let input: [UInt8] =
            [0x00, 0, 0, 0]
            + Array("POST / HTTP/1.1\r\nContent-Length: 20\r\n\r\n01234567890123456789GET / HTTP/1.1\r\n\r\n".utf8)
        FuzzProperty.replay(.httpRequest, input)
    }

    /// Bytes after a `Connection: close` response, or a request cut short by the close, made
    /// the handler answer a 400 to a closed connection.
    @Test func nothingIsRejectedOnceTheConnectionHasClosed() {
        FuzzProperty.replay(
            .httpRequest,
            [0x03, 0, 0, 0] + Array("GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n".utf8)
        )
        FuzzProperty.replay(
            .httpRequest,
            [0x03, 0, 0, 0] + Array("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab".utf8)
        )
    }

    /// The client went away with a request in flight and one queued; the responder ended the
    /// cancelled one anyway, and the queued request was dispatched on the closed connection.
    @Test func aLateAnswerDoesNotStartTheQueuedRequest() {
        FuzzProperty.replay(
            .httpRequest,
            [0x07, 0x09, 0, 0] + Array("GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n".utf8)
        )
    }
}
