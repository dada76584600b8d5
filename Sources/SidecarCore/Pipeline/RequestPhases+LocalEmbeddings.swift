import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOFoundationCompat
import SidecarEmbedding
import SidecarOpenAI

extension RequestPhases {
    /// The most inputs one local embeddings request may carry (OpenAI's own limit).
    static let maxLocalEmbeddingInputs = 2048

    /// The local embedding model's answer (nothing is forwarded).
    func embedLocally(_ request: ProxyRequest) async throws -> ProxyOutcome {
        let local = self.runtime.configuration.embeddings.localModel
        guard let embedder = self.runtime.localEmbedder else {
            throw SidecarError(
                status: .serviceUnavailable,
                type: "server_error",
                code: "local_embedder_unavailable",
                message:
                    "The local embedding model \"\(local)\" is not installed (expected in \(self.runtime.configuration.embeddings.modelDirectory)); run scripts/install-model.sh."
            )
        }
        return try await self.embedLocally(request, embedder: embedder)
    }

    /// `/v1/embeddings` for the local model: computed in-process, free, OpenAI's response shape
    /// (`encoding_format` `float` or `base64`, as the SDKs ask for).
    func embedLocally(_ request: ProxyRequest, embedder: any Embedder) async throws -> ProxyOutcome {
        let view: EmbeddingsRequestView
        do {
            view = try JSONDecoder().decode(EmbeddingsRequestView.self, from: request.body)
        } catch {
            throw SidecarError.invalidRequest("Invalid embeddings request: \(error)")
        }
        guard case .texts(let texts) = view.input, !texts.isEmpty else {
            throw SidecarError.invalidRequest(
                "The local embedding model takes `input` as a non-empty string or array of strings."
            )
        }
        guard texts.count <= Self.maxLocalEmbeddingInputs else {
            throw SidecarError.invalidRequest("At most \(Self.maxLocalEmbeddingInputs) inputs per request.")
        }
        if let dimensions = view.dimensions, dimensions != embedder.dimensions {
            throw SidecarError.invalidRequest(
                "\(embedder.modelName) has \(embedder.dimensions) dimensions; `dimensions` cannot change that."
            )
        }
        let base64 = view.encodingFormat == "base64"
        if let format = view.encodingFormat, format != "float" && format != "base64" {
            throw SidecarError.invalidRequest("`encoding_format` must be \"float\" or \"base64\".")
        }
        var vectors: [[Float]] = []
        vectors.reserveCapacity(texts.count)
        var start = 0
        while start < texts.count {
            let end = min(start + 64, texts.count)
            vectors += try await embedder.embed(Array(texts[start..<end]))
            start = end
        }
        var tokens = 0
        for text in texts { tokens += try await embedder.tokenCount(text) }

        var body = ByteBuffer()
        body.writeString(#"{"object":"list","data":["#)
        for (index, vector) in vectors.enumerated() {
            if index > 0 { body.writeString(",") }
            body.writeString(#"{"object":"embedding","index":\#(index),"embedding":"#)
            if base64 {
                var data = Data(capacity: vector.count * 4)
                for value in vector {
                    withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
                }
                body.writeString("\"\(data.base64EncodedString())\"")
            } else {
                body.writeString("[")
                body.writeString(vector.map { "\($0)" }.joined(separator: ","))
                body.writeString("]")
            }
            body.writeString("}")
        }
        body.writeString(#"],"model":"#)
        body.writeBytes(JSONString.encode(embedder.modelName))
        body.writeString(#","usage":{"prompt_tokens":\#(tokens),"total_tokens":\#(tokens)}}"#)

        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[SidecarHeaders.modelUsed] = embedder.modelName
        headers[SidecarHeaders.upstream] = "local"
        headers[SidecarHeaders.queryCost] = "0"
        headers[SidecarHeaders.cache] = "miss"
        headers[SidecarHeaders.requestID] = request.requestID
        self.metrics.recordRequest(
            endpoint: .embeddings,
            model: embedder.modelName,
            status: 200,
            since: request.receivedAt
        )
        return ProxyOutcome(status: .ok, headers: headers, body: ResponseBody(byteBuffer: body))
    }
}
