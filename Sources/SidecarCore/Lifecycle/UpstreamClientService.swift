import ServiceLifecycle
import SidecarHTTP

/// Owns the upstream connection pools: keeps them open while the server drains, then closes
/// every connection. Listed before the server so it stops after it.
public struct UpstreamClientService: Service {
    let pools: UpstreamConnectionPools
    /// The warm connections to open at start (`warm_connections`).
    let warm: [(endpoint: UpstreamEndpoint, count: Int)]

    init(pools: UpstreamConnectionPools, warm: [(endpoint: UpstreamEndpoint, count: Int)] = []) {
        self.pools = pools
        self.warm = warm
    }

    public func run() async throws {
        if !self.warm.isEmpty { self.pools.warm(self.warm) }
        try? await gracefulShutdown()
        await self.pools.shutdown()
    }
}
