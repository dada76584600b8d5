import NIOHTTP1

/// Names the app a request comes from: the app whose configured token (`[[clients]]`) the
/// request carries as its bearer, else its `X-Sidecar-App` header, else `default`.
public struct AppAttribution: Sendable {
    public static let defaultApp = "default"
    /// The longest app name taken from a header.
    static let maxNameBytes = 64
    private let appsByToken: [String: String]

    public init(clients: [ClientConfiguration], environment: [String: String]) {
        var apps: [String: String] = [:]
        for client in clients {
            if let token = environment[client.tokenEnv], !token.isEmpty { apps[token] = client.app }
        }
        self.appsByToken = apps
    }

    public func app(_ headers: HTTPHeaders) -> String {
        if !self.appsByToken.isEmpty, let authorization = headers.first(name: "authorization"),
            authorization.utf8.count > 7, authorization.lowercased().hasPrefix("bearer "),
            let app = self.appsByToken[String(authorization.dropFirst(7))]
        {
            return app
        }
        guard let name = headers.first(name: SidecarHeaders.app.rawName), !name.isEmpty,
            name.utf8.count <= Self.maxNameBytes,
            name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return Self.defaultApp }
        return name
    }
}
