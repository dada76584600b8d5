import HTTPTypes
import Hummingbird
import Logging
import NIOCore

extension ProxyPipeline {
    /// Builds the upstream request: the URL under the upstream's base, the client's headers minus
    /// hop-by-hop, sidecar and credential headers, and the upstream's own credential.
    func upstreamRequest(
        for request: ProxyRequest,
        upstream name: String,
        body: ByteBuffer?,
        native: Bool
    ) throws
        -> UpstreamRequest
    {
        guard let entry = self.runtime.directory.entry(name) else {
            throw SidecarError.upstream(UpstreamError(.unknownUpstream, upstream: name, detail: "not configured"))
        }
        let url: String
        if native {
            url = entry.rootURL + request.path
        } else {
            let suffix = request.path.hasPrefix("/v1") ? request.path.dropFirst(3) : Substring(request.path)
            url = entry.baseURL + suffix
        }
        let pinHeader = HTTPField.Name(self.runtime.configuration.routing.pinHeader)
        var headers = HTTPFields()
        headers.reserveCapacity(request.headers.count + 2)
        for field in request.headers {
            let name = field.name
            if SidecarHeaders.hopByHop.contains(name) || name == .acceptEncoding || name == pinHeader { continue }
            if name.canonicalName.hasPrefix("x-sidecar-") { continue }
            if name == .authorization && !entry.passClientAuthorization { continue }
            headers.append(field)
        }
        if let authorization = entry.authorization, !(entry.passClientAuthorization && headers[.authorization] != nil) {
            headers[.authorization] = authorization
        }
        if body != nil && headers[.contentType] == nil {
            headers[.contentType] = "application/json"
        }
        headers[SidecarHeaders.requestID] = request.requestID
        return UpstreamRequest(upstream: name, method: request.method, url: url, headers: headers, body: body)
    }

    /// The upstream's response headers that make sense to relay.
    func responseHeaders(upstream: HTTPFields) -> HTTPFields {
        var headers = HTTPFields()
        headers.reserveCapacity(upstream.count + 8)
        for field in upstream {
            if SidecarHeaders.hopByHop.contains(field.name) || field.name == .date || field.name == .server { continue }
            if field.name == SidecarHeaders.requestID {
                headers.append(HTTPField(name: SidecarHeaders.upstreamRequestID, value: field.value))
                continue
            }
            headers.append(field)
        }
        return headers
    }

    /// Other `/v1/*` paths and Ollama's `/api/*`: forwarded unchanged, relayed as they stream.
    func passThrough(_ request: ProxyRequest, upstream name: String, native: Bool) async throws -> ProxyOutcome {
        let body = request.body.readableBytes > 0 ? request.body : nil
        // Not idempotent in general: retry connection failures only, never answered statuses.
        let execution = try await self.executor.execute(
            candidates: [UpstreamCandidate(model: "", upstream: name)],
            deadline: request.receivedAt + self.runtime.configuration.timeouts.request,
            bufferLimit: nil,
            retryStatuses: false,
            requestID: request.requestID
        ) { _, upstream in
            try self.upstreamRequest(for: request, upstream: upstream, body: body, native: native)
        }
        let response = execution.response
        var headers = self.responseHeaders(upstream: response.headers)
        headers[SidecarHeaders.upstream] = name
        headers[SidecarHeaders.requestID] = request.requestID
        let metrics = self.metrics
        let endpoint = request.endpoint
        let status = response.status.code
        let upstreamBody = response.body
        let received = request.receivedAt
        return ProxyOutcome(
            status: response.status,
            headers: headers,
            body: ResponseBody { writer in
                for try await chunk in upstreamBody {
                    try await writer.write(chunk)
                }
                try await writer.finish(nil)
                metrics.recordRequest(endpoint: endpoint, model: "", status: status, since: received)
            }
        )
    }
}
