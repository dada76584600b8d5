import NIOPosix
import Testing

/// A loopback port with nothing listening (bound, noted, closed): connecting to it is refused
/// until something binds it again.
func closedPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0).get()
    let port = try #require(channel.localAddress?.port)
    try await channel.close()
    return port
}
