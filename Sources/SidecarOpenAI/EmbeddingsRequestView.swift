/// The parts of an OpenAI embeddings request the local embedder reads.
package struct EmbeddingsRequestView: Decodable, Sendable {
    package enum Input: Decodable, Sendable {
        case texts([String])
        case tokens

        package init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                self = .texts([text])
            } else if let texts = try? container.decode([String].self) {
                self = .texts(texts)
            } else {
                self = .tokens
            }
        }
    }

    package var model: String?
    package var input: Input
    package var encodingFormat: String?
    package var dimensions: Int?

    package enum CodingKeys: String, CodingKey {
        case model, input, dimensions
        case encodingFormat = "encoding_format"
    }
}
