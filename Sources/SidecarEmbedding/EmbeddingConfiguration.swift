/// `[embeddings]`: the built-in sentence embedder.
public struct EmbeddingConfiguration: Sendable, Equatable {
    /// The model name clients use in `/v1/embeddings` to get local vectors; empty turns it off.
    public var localModel: String
    /// Directory holding `<local_model>/` as installed by `scripts/install-model.sh`.
    public var modelsDirectory: String

    public init(localModel: String = "all-MiniLM-L6-v2", modelsDirectory: String = "./models") {
        self.localModel = localModel
        self.modelsDirectory = modelsDirectory
    }

    /// Where the model's files are expected.
    public var modelDirectory: String {
        self.modelsDirectory.hasSuffix("/")
            ? self.modelsDirectory + self.localModel : "\(self.modelsDirectory)/\(self.localModel)"
    }
}
