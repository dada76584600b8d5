import AsyncHTTPClient
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// ``UpstreamClient`` over one shared AsyncHTTPClient (pooled keep-alive connections, TLS,
/// HTTP/2 where the upstream offers it, streaming with back-pressure).
public final class HTTPUpstreamClient: UpstreamClient {
    public let httpClient: HTTPClient
    private let logger: Logger

    /// - Parameters:
    ///   - timeouts: connect timeout for new connections.
    ///   - connectionsPerHost: keep-alive connections per upstream host (AHC's default of 8
    ///     turns a busy upstream into a queue).
    public init(
        timeouts: TimeoutConfiguration,
        connectionsPerHost: Int = 256,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .nanoseconds(timeouts.connect.saturatingNanoseconds)
        configuration.timeout.read = .nanoseconds(timeouts.idle.saturatingNanoseconds)
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = connectionsPerHost
        configuration.connectionPool.idleTimeout = .seconds(60)
        // Fail fast when an upstream is down: retries and fallbacks are the sidecar's own policy.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        self.httpClient = HTTPClient(eventLoopGroup: eventLoopGroup, configuration: configuration)
        self.logger = logger
    }

    public func send(_ request: UpstreamRequest, deadline: ContinuousClock.Instant) async throws -> UpstreamResponse {
        var outbound = HTTPClientRequest(url: request.url)
        outbound.method = HTTPMethod(rawValue: request.method.rawValue)
        outbound.headers.reserveCapacity(request.headers.count)
        for field in request.headers {
            outbound.headers.add(name: field.name.rawName, value: field.value)
        }
        if let body = request.body {
            outbound.body = .bytes(body)
        }
        let remaining = ContinuousClock.now.duration(to: deadline)
        guard remaining > .zero else {
            throw UpstreamError(.deadlineExceeded, upstream: request.upstream, detail: "deadline passed before sending")
        }
        let response: HTTPClientResponse
        do {
            response = try await self.httpClient.execute(
                outbound,
                deadline: .now() + TimeAmount(remaining),
                logger: self.logger
            )
        } catch {
            throw Self.map(error, upstream: request.upstream)
        }
        var headers = HTTPFields()
        headers.reserveCapacity(response.headers.count)
        for (name, value) in response.headers {
            if let fieldName = HTTPField.Name(name) {
                headers.append(HTTPField(name: fieldName, value: value))
            }
        }
        let upstream = request.upstream
        let body = response.body.mapError { Self.map($0, upstream: upstream) }
        return UpstreamResponse(
            status: HTTPResponse.Status(code: Int(response.status.code), reasonPhrase: response.status.reasonPhrase),
            headers: headers,
            body: UpstreamBody(body)
        )
    }

    /// Maps AsyncHTTPClient and NIO errors to ``UpstreamError``, keeping what failed.
    static func map(_ error: any Error, upstream: String) -> UpstreamError {
        if let error = error as? UpstreamError { return error }
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return UpstreamError(.connectTimeout, upstream: upstream, detail: "connect timed out")
            case .deadlineExceeded:
                return UpstreamError(.deadlineExceeded, upstream: upstream, detail: "deadline exceeded")
            case .cancelled: return UpstreamError(.cancelled, upstream: upstream, detail: "request cancelled")
            case .remoteConnectionClosed:
                return UpstreamError(.connectionClosed, upstream: upstream, detail: "connection closed by upstream")
            case .readTimeout: return UpstreamError(.deadlineExceeded, upstream: upstream, detail: "read timed out")
            default: return UpstreamError(.other, upstream: upstream, detail: error.shortDescription)
            }
        }
        if let error = error as? HTTPParserError {
            // The upstream closed before the message was complete: safe to retry.
            if case .invalidEOFState = error {
                return UpstreamError(.connectionClosed, upstream: upstream, detail: "connection closed mid-response")
            }
            return UpstreamError(.other, upstream: upstream, detail: "malformed response: \(error)")
        }
        if error is CancellationError {
            return UpstreamError(.cancelled, upstream: upstream, detail: "request cancelled")
        }
        if let error = error as? NIOConnectionError {
            let reason = error.connectionErrors.first.map { "\($0.error)" } ?? "\(error)"
            return UpstreamError(
                .connectFailed,
                upstream: upstream,
                detail: "cannot connect to \(error.host):\(error.port): \(reason)"
            )
        }
        if let error = error as? IOError {
            let reason = String(cString: strerror(error.errnoCode)).lowercased()
            return UpstreamError(.connectFailed, upstream: upstream, detail: "\(reason) (errno \(error.errnoCode))")
        }
        if let error = error as? ChannelError, case .connectTimeout = error {
            return UpstreamError(.connectTimeout, upstream: upstream, detail: "connect timed out")
        }
        return UpstreamError(.other, upstream: upstream, detail: String(describing: error))
    }
}

extension AsyncSequence where Self: Sendable, Element == ByteBuffer {
    fileprivate func mapError(
        _ transform: @escaping @Sendable (any Error) -> any Error
    ) -> MapErrorSequence<Self> {
        MapErrorSequence(base: self, transform: transform)
    }
}

/// Rethrows the base sequence's errors through `transform`.
struct MapErrorSequence<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let transform: @Sendable (any Error) -> any Error

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let transform: @Sendable (any Error) -> any Error

        mutating func next() async throws -> ByteBuffer? {
            do {
                return try await self.base.next()
            } catch {
                throw self.transform(error)
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: self.base.makeAsyncIterator(), transform: self.transform)
    }
}
