import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SidecarEmbedding
import SidecarOpenAI

/// `GET /v1/models`: the configured models plus the routing alias, in OpenAI's list shape.
enum ModelsController {
    struct ModelList: Encodable {
        struct Model: Encodable {
            var id: String
            var object = "model"
            var created = 0
            var ownedBy: String

            enum CodingKeys: String, CodingKey {
                case id, object, created
                case ownedBy = "owned_by"
            }
        }

        var object = "list"
        var data: [Model]
    }

    static func list(_ configuration: SidecarConfiguration, requestID: String) -> Response {
        var models = [ModelList.Model(id: configuration.routing.autoAlias, ownedBy: "llm-sidecar")]
        models += configuration.models.map { ModelList.Model(id: $0.name, ownedBy: $0.upstream) }
        if !configuration.embeddings.localModel.isEmpty {
            models.append(ModelList.Model(id: configuration.embeddings.localModel, ownedBy: "llm-sidecar"))
        }
        let data = (try? JSONEncoder().encode(ModelList(data: models))) ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        headers[SidecarHeaders.requestID] = requestID
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
