import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import ServiceLifecycle

@testable import SidecarCore

/// A response as the live tests read it.
struct SidecarTestResponse: Sendable {
    let head: HTTPResponse
    var status: HTTPResponse.Status { self.head.status }
    var headers: HTTPFields { self.head.headerFields }
    let body: ByteBuffer
    let trailerHeaders: HTTPFields?
}

/// A keep-alive HTTP/1.1 client of the sidecar under test (HummingbirdTesting's `TestClient`).
struct SidecarTestClient: Sendable {
    let client: TestClient
    let port: Int?

    @discardableResult func execute<Return>(
        uri: String,
        method: HTTPRequest.Method,
        headers: HTTPFields = [:],
        body: ByteBuffer? = nil,
        testCallback: @escaping (SidecarTestResponse) async throws -> Return = { $0 }
    ) async throws -> Return {
        var headers = headers
        headers[.connection] = "keep-alive"
        let request = TestClient.Request(uri, method: method, authority: "localhost", headers: headers, body: body)
        let response = try await self.client.execute(request)
        return try await testCallback(
            SidecarTestResponse(
                head: response.head,
                body: response.body ?? ByteBuffer(),
                trailerHeaders: response.trailerHeaders
            )
        )
    }
}

struct SidecarDidNotListen: Error {}

extension SidecarServer {
    /// Runs the sidecar's services (its listener on the configured address, port 0 for a free
    /// one) and `body` with a client connected to it; then shuts everything down gracefully.
    func test<Value: Sendable>(_ body: @Sendable (SidecarTestClient) async throws -> Value) async throws -> Value {
        try await withThrowingTaskGroup(of: Void.self) { group in
            let serviceGroup = ServiceGroup(
                services: self.services,
                gracefulShutdownSignals: [],
                cancellationSignals: [],
                logger: self.logger
            )
            group.addTask { try await serviceGroup.run() }
            guard let port = await self.listeningAddress()?.port else {
                await serviceGroup.triggerGracefulShutdown()
                throw SidecarDidNotListen()
            }
            let client = TestClient(host: "localhost", port: port, configuration: .init(timeout: .seconds(20)))
            client.connect()
            do {
                let value = try await body(SidecarTestClient(client: client, port: port))
                try await client.shutdown()
                await serviceGroup.triggerGracefulShutdown()
                try await group.waitForAll()
                return value
            } catch {
                try? await client.shutdown()
                await serviceGroup.triggerGracefulShutdown()
                try? await group.waitForAll()
                throw error
            }
        }
    }
}
