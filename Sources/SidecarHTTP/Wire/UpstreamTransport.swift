import NIOCore

/// Sends one request to an upstream and reports its answer to a delegate, on one event loop.
/// The production transport is the event loop's ``UpstreamConnectionPool``; tests use an
/// in-memory fake that scripts heads, chunks, failures and silence.
package protocol UpstreamTransport: AnyObject {
    /// Starts a call. Delegate calls happen later on the same event loop (never from inside
    /// this call), in order: head, body parts, then exactly one of finish or fail.
    func send(_ request: UpstreamWireRequest, delegate: any UpstreamResponseDelegate) -> any UpstreamCallHandle
}

/// One call in flight, as its caller controls it.
package protocol UpstreamCallHandle: AnyObject {
    /// Stops the call: no delegate call at all afterwards. Idempotent.
    func cancel()
    /// Back-pressure: stop (or resume) reading the answer from the upstream.
    func setReadingPaused(_ paused: Bool)
}

extension UpstreamConnectionPool: UpstreamTransport {
    package func send(_ request: UpstreamWireRequest, delegate: any UpstreamResponseDelegate) -> any UpstreamCallHandle
    {
        self.execute(request, delegate: delegate)
    }
}

extension UpstreamCall: UpstreamCallHandle {}
