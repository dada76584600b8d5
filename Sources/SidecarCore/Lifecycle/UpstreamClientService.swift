import ServiceLifecycle
import SidecarHTTP

/// Owns the upstream connection pools: keeps them open while the server drains, then closes
/// every connection. Listed before the server so it stops after it.
public struct UpstreamClientService: Service {
    let pools: UpstreamConnectionPools
    /// Each upstream's pool settings, applied at start (warm connections open then).
    let endpoints: [(endpoint: UpstreamEndpoint, settings: UpstreamEndpointSettings)]

    init(
        pools: UpstreamConnectionPools,
        endpoints: [(endpoint: UpstreamEndpoint, settings: UpstreamEndpointSettings)] = []
    ) {
        self.pools = pools
        self.endpoints = endpoints
    }

    public func run() async throws {
        if !self.endpoints.isEmpty { self.pools.configureEndpoints(self.endpoints) }
        try? await gracefulShutdown()
        await self.pools.shutdown()
    }
}
