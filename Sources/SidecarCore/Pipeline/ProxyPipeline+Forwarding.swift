import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1

extension ProxyPipeline {
    /// The request for `model` on upstream `name`: the URL under the upstream's base, the client's
    /// headers minus hop-by-hop, sidecar and credential headers, the upstream's own credential,
    /// and for completions the body with `model` spliced in (plus usage for streams).
    func wireRequest(_ plan: ForwardPlan, model: String, upstream name: String) throws -> UpstreamWireRequest {
        let request = plan.request
        guard let entry = self.runtime.directory.entry(name) else {
            throw SidecarError.upstream(UpstreamError(.unknownUpstream, upstream: name, detail: "not configured"))
        }
        guard let endpoint = entry.endpoint else {
            throw SidecarError.upstream(
                UpstreamError(.connectFailed, upstream: name, detail: "base_url \(entry.baseURL) is not an http(s) URL")
            )
        }
        let body: ByteBuffer?
        let uri: String
        switch plan.kind {
        case .generate(_, _, let requestedModel, let streaming, let clientAskedForUsage):
            // Rewrite: only `model`, plus usage for streams so every answer can be priced.
            guard
                let rewritten = RequestBodyRewriter.rewrite(
                    request.body,
                    model: model == requestedModel ? nil : model,
                    includeUsage: streaming && !clientAskedForUsage
                )
            else {
                throw SidecarError.invalidRequest("The request body must be a JSON object.")
            }
            body = rewritten
            uri = Self.join(entry.basePath, request.path)
        case .embed:
            body = request.body
            uri = Self.join(entry.basePath, request.path)
        case .passThrough(let native):
            body = request.body.readableBytes > 0 ? request.body : nil
            uri = native ? entry.rootPath + request.path : Self.join(entry.basePath, request.path)
        }
        let pinHeader = HTTPField.Name(self.runtime.configuration.routing.pinHeader)
        var headers = HTTPHeaders()
        headers.reserveCapacity(request.headers.count + 3)
        var sawAuthorization = false
        var sawContentType = false
        for field in request.headers {
            let name = field.name
            if SidecarHeaders.hopByHop.contains(name) || name == .acceptEncoding || name == pinHeader { continue }
            if name == SidecarHeaders.requestID || name.canonicalName.hasPrefix("x-sidecar-") { continue }
            if name == .authorization {
                guard entry.passClientAuthorization else { continue }
                sawAuthorization = true
            }
            if name == .contentType { sawContentType = true }
            headers.add(name: name.rawName, value: field.value)
        }
        if let authorization = entry.authorization, !sawAuthorization {
            headers.add(name: "Authorization", value: authorization)
        }
        if body != nil && !sawContentType {
            headers.add(name: "Content-Type", value: "application/json")
        }
        headers.add(name: "X-Request-Id", value: request.requestID)
        return UpstreamWireRequest(
            endpoint: endpoint,
            method: HTTPMethod(rawValue: request.method.rawValue),
            uri: uri,
            headers: headers,
            body: body,
            upstreamName: name
        )
    }

    /// `/v1/chat/completions` under a base path `/openai/v1` -> `/openai/v1/chat/completions`.
    static func join(_ basePath: String, _ path: String) -> String {
        let suffix = path.hasPrefix("/v1") ? path.dropFirst(3) : Substring(path)
        return basePath + suffix
    }
}
