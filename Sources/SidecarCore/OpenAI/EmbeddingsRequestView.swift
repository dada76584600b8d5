/// The parts of an OpenAI embeddings request the local embedder reads.
struct EmbeddingsRequestView: Decodable, Sendable {
    enum Input: Decodable, Sendable {
        case texts([String])
        case tokens

        init(from decoder: any Decoder) throws {
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

    var model: String?
    var input: Input
    var encodingFormat: String?
    var dimensions: Int?

    enum CodingKeys: String, CodingKey {
        case model, input, dimensions
        case encodingFormat = "encoding_format"
    }
}
