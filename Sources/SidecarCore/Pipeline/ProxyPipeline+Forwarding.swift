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
        case .generate(let completion):
            // Rewrite: only `model`, plus usage for streams so every answer can be priced.
            let newModel = model == completion.requestedModel ? nil : model
            let includeUsage = completion.streaming && !completion.clientAskedForUsage
            let rewritten =
                completion.layout.map {
                    RequestBodyRewriter.rewrite(request.body, layout: $0, model: newModel, includeUsage: includeUsage)
                } ?? RequestBodyRewriter.rewrite(request.body, model: newModel, includeUsage: includeUsage)
            guard let rewritten else {
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
        let pinHeader = self.pinHeader
        var headers = HTTPHeaders()
        headers.reserveCapacity(request.headers.count + 3)
        var sawAuthorization = false
        var sawContentType = false
        for (name, value) in request.headers {
            if SidecarHeaders.isDropped(requestHeader: name) || name.caseInsensitiveEquals(pinHeader) { continue }
            if name.caseInsensitiveEquals("authorization") {
                guard entry.passClientAuthorization else { continue }
                sawAuthorization = true
            } else if name.caseInsensitiveEquals("content-type") {
                sawContentType = true
            }
            headers.add(name: name, value: value)
        }
        if let authorization = entry.authorization, !sawAuthorization {
            headers.add(name: "Authorization", value: authorization)
        }
        if body != nil && !sawContentType {
            headers.add(name: "Content-Type", value: "application/json")
        }
        headers.add(name: SidecarHeaders.requestID.rawName, value: request.requestID)
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
