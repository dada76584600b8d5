import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOPosix

/// Probes each upstream's `GET /models` for `llm-sidecar check`.
public struct UpstreamProbe: Sendable {
    /// One upstream's result.
    public struct Result: Sendable {
        public var upstream: String
        public var baseURL: String
        public var reachable: Bool
        /// `ok`, `HTTP 401`, or what failed.
        public var status: String
        public var latencyMilliseconds: Int?
        /// Model ids the upstream listed.
        public var models: [String]
        /// The config names a key variable that is unset.
        public var missingKeyVariable: String?
    }

    private struct ModelList: Decodable {
        struct Model: Decodable { var id: String }
        var data: [Model]?
        var models: [Model]?
    }

    let directory: UpstreamDirectory
    let timeout: Duration

    public init(directory: UpstreamDirectory, timeout: Duration = .seconds(3)) {
        self.directory = directory
        self.timeout = timeout
    }

    public func probeAll(client: HTTPClient, logger: Logger) async -> [Result] {
        var results: [Result] = []
        for name in self.directory.names {
            guard let entry = self.directory.entry(name) else { continue }
            results.append(await self.probe(entry, client: client, logger: logger))
        }
        return results
    }

    private func probe(_ entry: UpstreamDirectory.Entry, client: HTTPClient, logger: Logger) async -> Result {
        var result = Result(
            upstream: entry.name,
            baseURL: entry.baseURL,
            reachable: false,
            status: "",
            latencyMilliseconds: nil,
            models: [],
            missingKeyVariable: entry.missingKeyVariable
        )
        var request = HTTPClientRequest(url: entry.baseURL + "/models")
        if let authorization = entry.authorization {
            request.headers.add(name: "Authorization", value: authorization)
        }
        let started = ContinuousClock.now
        do {
            let response = try await client.execute(
                request,
                timeout: .milliseconds(Int64(self.timeout / .milliseconds(1))),
                logger: logger
            )
            let body = try await response.body.collect(upTo: 4 << 20)
            let elapsed = ContinuousClock.now - started
            result.latencyMilliseconds = Int(elapsed / .milliseconds(1))
            result.reachable = true
            if response.status.code == 200 {
                result.status = "ok"
                if let list = try? JSONDecoder().decode(ModelList.self, from: body) {
                    result.models = (list.data ?? list.models ?? []).map(\.id)
                }
            } else {
                result.status = "HTTP \(response.status.code)"
            }
        } catch {
            result.status = Self.describe(error)
        }
        return result
    }

    /// A short reason for a failed probe.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as HTTPClientError where error == .connectTimeout: return "connect_timeout"
        case let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout: return "timeout"
        case is NIOConnectionError: return "connect_failed"
        case let error as IOError: return "connect_failed (errno \(error.errnoCode))"
        default: return "failed: \(error)"
        }
    }
}
