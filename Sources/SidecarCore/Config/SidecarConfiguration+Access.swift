extension SidecarConfiguration {
    /// Checks who will be able to use the sidecar, with the environment it runs in: every
    /// `[[clients]]` token is set and different, and a listener beyond loopback has tokens.
    ///
    /// - Parameter file: the configuration's name, for the message.
    /// - Returns: warnings (short tokens).
    /// - Throws: ``ConfigurationError`` saying what is wrong and what to set.
    public func validateAccess(environment: [String: String], file: String) throws(ConfigurationError) -> [String] {
        var warnings: [String] = []
        var apps: [String: String] = [:]
        for (index, client) in self.clients.enumerated() {
            let key = "clients[\(index)].token_env"
            guard let token = environment[client.tokenEnv], !token.isEmpty else {
                throw ConfigurationError(
                    file: file,
                    key: key,
                    reason: "the environment variable \(client.tokenEnv) holding the token of the app "
                        + "\"\(client.app)\" is not set (set it, e.g. through the unit's EnvironmentFile=)"
                )
            }
            if let other = apps[token] {
                throw ConfigurationError(
                    file: file,
                    key: key,
                    reason: "the apps \"\(other)\" and \"\(client.app)\" have the same token; each app needs its own"
                )
            }
            apps[token] = client.app
            if token.utf8.count < 16 {
                warnings.append(
                    "the token of the app \"\(client.app)\" (\(client.tokenEnv)) is shorter than 16 characters; "
                        + "use a long random one (openssl rand -hex 32)"
                )
            }
        }
        if !self.server.listen.isLoopback && self.clients.isEmpty {
            throw ConfigurationError(
                file: file,
                key: "server.listen",
                reason: "refusing to listen on \(self.server.listen), beyond loopback, without client tokens: "
                    + "anyone who can reach the port could spend the upstreams' keys. Add [[clients]] entries "
                    + "(app, token_env) and set their tokens, or listen on 127.0.0.1."
            )
        }
        return warnings
    }
}
