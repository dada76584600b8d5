import NIOCore
import NIOPosix

/// Sends bytes exactly as written (request lines no HTTP client would send: absolute-form,
/// `CONNECT`, `*`, un-normalised paths) and reads whatever comes back until the server closes.
enum RawHTTPClient {
    struct Answer: Sendable {
        var text: String
        /// From the status line; 0 when there was none.
        var status: Int {
            let parts = self.text.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/") else { return 0 }
            return Int(parts[1]) ?? 0
        }
        var body: Substring {
            guard let range = self.text.range(of: "\r\n\r\n") else { return "" }
            return self.text[range.upperBound...]
        }
    }

    struct TimedOut: Error {}

    /// One connection to 127.0.0.1:`port`: writes `request`, then reads until the server closes
    /// the connection or `timeout` passes.
    static func exchange(port: Int, _ request: String, timeout: Duration = .seconds(10)) async throws -> Answer {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await withThrowingTaskGroup(of: Answer.self) { group in
            group.addTask {
                try await channel.executeThenClose { inbound, outbound in
                    try await outbound.write(ByteBuffer(string: request))
                    var received = ByteBuffer()
                    for try await var chunk in inbound { received.writeBuffer(&chunk) }
                    return Answer(text: String(buffer: received))
                }
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw TimedOut()
            }
            defer { group.cancelAll() }
            guard let answer = try await group.next() else { throw TimedOut() }
            return answer
        }
    }
}
