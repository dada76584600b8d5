import AsyncHTTPClient
import ServiceLifecycle

/// Owns the shared upstream HTTP client: keeps it open while the server drains, then shuts it
/// down. Listed before the server so it stops after it.
public struct UpstreamClientService: Service {
    let client: HTTPUpstreamClient

    public init(client: HTTPUpstreamClient) {
        self.client = client
    }

    public func run() async throws {
        try? await gracefulShutdown()
        try await self.client.httpClient.shutdown()
    }
}
