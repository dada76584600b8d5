import HTTPTypes
import NIOCore
import NIOHTTP1
import SidecarHTTP
import SidecarOpenAI
import SidecarPolicy

/// A client request as it is to be sent upstream, before a model and an upstream are chosen
/// for an attempt.
struct OutgoingRequest: Sendable {
    enum Body: Sendable {
        /// Chat or legacy completions: `model` spliced in, plus usage for streams the sidecar prices.
        case completion(requestedModel: String?, addUsage: Bool, layout: RequestBodyLayout?)
        /// Remote embeddings: the body as it came.
        case unchanged
        /// Other `/v1/*` paths (`native: false`) or Ollama's `/api/*` (`native: true`).
        case passThrough(native: Bool)
    }

    var request: ProxyRequest
    var body: Body
    /// The whole request's deadline.
    var deadline: ContinuousClock.Instant

    /// Which of the upstream's breakers guards this call.
    var traffic: TrafficClass {
        switch self.body {
        case .completion: return .generation
        case .unchanged: return .embeddings
        case .passThrough: return .other
        }
    }
}

/// Builds the request for one attempt: the URL under the upstream's base, the client's headers
/// minus hop-by-hop, sidecar and credential headers, the upstream's own credential, and for
/// completions the body with `model` spliced in (plus usage for streams).
struct UpstreamRequestBuilder: Sendable {
    let directory: UpstreamDirectory
    /// `routing.pin_header`, lower-cased once for the comparisons.
    let pinHeader: String

    init(directory: UpstreamDirectory, pinHeader: String) {
        self.directory = directory
        self.pinHeader = pinHeader.lowercased()
    }

    func request(for outgoing: OutgoingRequest, model: String, upstream name: String) throws -> UpstreamWireRequest {
        let request = outgoing.request
        // The listener refuses such targets already; a request made elsewhere is checked too, so
        // nothing but a plain path is ever put under the upstream's base path.
        if let problem = RequestTarget.problem(request.path) { throw SidecarError.invalidTarget(problem) }
        guard let entry = self.directory.entry(name) else {
            throw SidecarError.upstream(UpstreamError(.unknownUpstream, upstream: name, detail: "not configured"))
        }
        guard let endpoint = entry.endpoint else {
            throw SidecarError.upstream(
                UpstreamError(.connectFailed, upstream: name, detail: "base_url \(entry.baseURL) is not an http(s) URL")
            )
        }
        let body: ByteBuffer?
        let uri: String
        switch outgoing.body {
        case .completion(let requestedModel, let addUsage, let layout):
            // Rewrite: only `model`, plus usage for streams so every answer can be priced.
            let newModel = model == requestedModel ? nil : model
            let rewritten =
                layout.map {
                    RequestBodyRewriter.rewrite(request.body, layout: $0, model: newModel, includeUsage: addUsage)
                } ?? RequestBodyRewriter.rewrite(request.body, model: newModel, includeUsage: addUsage)
            guard let rewritten else {
                throw SidecarError.invalidRequest("The request body must be a JSON object.")
            }
            body = rewritten
            uri = Self.join(entry.basePath, request.path)
        case .unchanged:
            body = request.body
            uri = Self.join(entry.basePath, request.path)
        case .passThrough(let native):
            body = request.body.readableBytes > 0 ? request.body : nil
            uri = native ? entry.rootPath + request.path : Self.join(entry.basePath, request.path)
        }
        // A list, made into `HTTPHeaders` at once (`add` checks each name for ASCII).
        var headers: [(String, String)] = []
        headers.reserveCapacity(request.headers.count + 5)
        var sawAuthorization = false
        var sawContentType = false
        for (name, value) in request.headers {
            if SidecarHeaders.isDropped(requestHeader: name) || name.caseInsensitiveEquals(self.pinHeader) { continue }
            if name.caseInsensitiveEquals("authorization") {
                guard entry.passClientAuthorization else { continue }
                sawAuthorization = true
            } else if name.caseInsensitiveEquals("content-type") {
                sawContentType = true
            }
            headers.append((name, value))
        }
        if let authorization = entry.authorization, !sawAuthorization {
            headers.append(("Authorization", authorization))
        }
        if body != nil && !sawContentType {
            headers.append(("Content-Type", "application/json"))
        }
        headers.append((SidecarHeaders.requestID.rawName, request.requestID))
        return UpstreamWireRequest(
            endpoint: endpoint,
            method: HTTPMethod(rawValue: request.method.rawValue),
            uri: uri,
            headers: HTTPHeaders(headers),
            body: body,
            upstreamName: name
        )
    }

    /// `/v1/chat/completions` under a base path `/openai/v1` -> `/openai/v1/chat/completions`;
    /// `/v1?x` under the root (base path ``) -> `/?x`: always a path.
    static func join(_ basePath: String, _ path: String) -> String {
        let suffix = path.hasPrefix("/v1") ? path.dropFirst(3) : Substring(path)
        let joined = basePath + suffix
        return joined.hasPrefix("/") ? joined : "/" + joined
    }
}
