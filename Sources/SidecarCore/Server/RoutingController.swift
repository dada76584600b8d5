import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOPosix
import SidecarPolicy

/// `POST /sidecar/route` (the routing decision for a request body, nothing forwarded) and
/// `/sidecar/feedback` (`POST` a rating of a routed request, `GET` the ratings by tier).
struct RoutingController {
    let phases: RequestPhases

    struct Decision: Encodable {
        var score: Double
        var router: String
        var tier: Int?
        var model: String
        var upstream: String
        var route: String
        var strategy: String
        var app: String
        var fallbacks: [String]
        var features: [String: Double]
    }

    struct Rating: Decodable {
        enum Value: Decodable {
            case number(Double)
            case flag(Bool)

            init(from decoder: any Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let flag = try? container.decode(Bool.self) {
                    self = .flag(flag)
                } else {
                    self = .number(try container.decode(Double.self))
                }
            }
        }

        var requestID: String
        var rating: Value

        enum CodingKeys: String, CodingKey {
            case requestID = "request_id"
            case rating
        }
    }

    struct Rated: Encodable {
        var requestID: String
        var rating: Double
        var model: String
        var tier: Int?
        var router: String
        var app: String

        enum CodingKeys: String, CodingKey {
            case requestID = "request_id"
            case rating, model, tier, router, app
        }
    }

    struct Report: Encodable {
        var source: String
        var tiers: [RouteJournal.Row]
    }

    func route(_ request: Request, requestID: String) async throws -> Response {
        let body = try await self.body(request)
        let proxyRequest = ProxyRequest(
            endpoint: .chatCompletions,
            method: .post,
            path: "/sidecar/route",
            headers: HTTPHeaders(request.headers),
            body: body,
            requestID: requestID,
            app: self.phases.runtime.apps.appOrDefault(HTTPHeaders(request.headers), path: "/sidecar/route")
        )
        let (view, layout) = try RequestDecoder.decodeWithLayout(body)
        let decoded = DecodedRequest.completion(view, layout: layout)
        let context = RequestContext(request: proxyRequest)
        context.decoded = decoded
        var embedding: [Float]?
        if let pending = self.phases.scorer.embedding(decoded, on: MultiThreadedEventLoopGroup.singleton.any()) {
            embedding = try await pending.get()
        }
        let score = self.phases.scorer.score(decoded, embedding: embedding)
        let plan = try self.phases.router.route(
            proxyRequest,
            decoded: decoded,
            score: score,
            promptTokens: Pricer.estimatedPromptTokens(context)
        )
        guard let decision = plan.decision else { throw SidecarError.internalError("No routing decision.") }
        let answer = Decision(
            score: decision.score.value,
            router: decision.score.router.rawValue,
            tier: decision.tier,
            model: decision.model,
            upstream: decision.upstream,
            route: decision.routeLabel,
            strategy: self.phases.runtime.configuration.routing.strategy.rawValue,
            app: plan.app,
            fallbacks: plan.forwarding.candidates.dropFirst().map(\.model),
            features: Dictionary(decision.score.features.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        )
        return try Self.json(answer, requestID: requestID)
    }

    func feedback(_ request: Request, requestID: String) async throws -> Response {
        guard request.method == .post else {
            let (rows, source) = await self.phases.journal.report()
            return try Self.json(Report(source: source, tiers: rows), requestID: requestID)
        }
        let body = try await self.body(request)
        let rating: Rating
        do {
            rating = try JSONDecoder().decode(Rating.self, from: body)
        } catch {
            throw SidecarError.invalidRequest(
                "Feedback is {\"request_id\": \"...\", \"rating\": 0..1 or true/false}: \(error)",
                code: "invalid_feedback"
            )
        }
        let value: Double
        switch rating.rating {
        case .flag(let good): value = good ? 1 : 0
        case .number(let number): value = number
        }
        guard value.isFinite, (0...1).contains(value) else {
            throw SidecarError.invalidRequest(
                "rating must be between 0 and 1 (or true/false).",
                code: "invalid_feedback"
            )
        }
        do {
            let decision = try await self.phases.journal.rate(rating.requestID, rating: value)
            return try Self.json(
                Rated(
                    requestID: rating.requestID,
                    rating: value,
                    model: decision.model,
                    tier: decision.tier,
                    router: decision.router,
                    app: decision.app
                ),
                requestID: requestID
            )
        } catch {
            throw SidecarError(
                status: .notFound,
                type: "invalid_request_error",
                code: "unknown_request",
                message: "No recent routed request has the id \"\(rating.requestID)\" (its X-Request-Id)."
            )
        }
    }

    private func body(_ request: Request) async throws -> ByteBuffer {
        let limit = self.phases.runtime.configuration.server.maxBodyBytes
        do {
            return try await request.body.collect(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw SidecarError.bodyTooLarge(limit: limit)
        }
    }

    static func json(_ value: some Encodable, requestID: String) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[SidecarHeaders.requestID] = requestID
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
