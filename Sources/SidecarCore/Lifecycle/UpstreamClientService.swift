import ServiceLifecycle
import SidecarHTTP

/// Owns the upstream connection pools: keeps them open while the server drains, then closes
/// every connection. Listed before the server so it stops after it.
public struct UpstreamClientService: Service {
    let pools: UpstreamConnectionPools

    init(pools: UpstreamConnectionPools) {
        self.pools = pools
    }

    public func run() async throws {
        try? await gracefulShutdown()
        await self.pools.shutdown()
    }
}
