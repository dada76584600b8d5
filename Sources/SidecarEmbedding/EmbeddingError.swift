/// An error raised while loading or running the native sentence embedder.
///
/// Compare against the static members (`error == .modelFileMissing`); ``shortDescription`` is a
/// constant, label-safe string for metrics, and `description` adds the details.
public struct EmbeddingError: Error, Equatable, Sendable, CustomStringConvertible {
    private enum Code: Equatable, Sendable {
        case modelFileMissing
        case invalidVocabulary
        case invalidConfiguration
        case invalidSafetensorsHeader
        case tensorMissing
        case unsupportedTensorType
        case tensorShapeMismatch
    }

    private let code: Code

    /// Free-form context (a path, a tensor name); not part of equality.
    public let details: String

    private init(_ code: Code, details: String = "") {
        self.code = code
        self.details = details
    }

    /// Equality compares the kind of error only, not ``details``.
    public static func == (lhs: EmbeddingError, rhs: EmbeddingError) -> Bool {
        lhs.code == rhs.code
    }

    /// A constant, label-safe description of the kind of error.
    public var shortDescription: String {
        switch self.code {
        case .modelFileMissing: "model file missing"
        case .invalidVocabulary: "invalid vocabulary"
        case .invalidConfiguration: "invalid model configuration"
        case .invalidSafetensorsHeader: "invalid safetensors header"
        case .tensorMissing: "tensor missing"
        case .unsupportedTensorType: "unsupported tensor type"
        case .tensorShapeMismatch: "tensor shape mismatch"
        }
    }

    public var description: String {
        self.details.isEmpty
            ? "EmbeddingError: \(self.shortDescription)"
            : "EmbeddingError: \(self.shortDescription): \(self.details)"
    }

    /// A model file (vocabulary, configuration, weights) could not be read.
    public static let modelFileMissing = EmbeddingError(.modelFileMissing)
    /// The vocabulary lacks entries the tokenizer needs, or is empty.
    public static let invalidVocabulary = EmbeddingError(.invalidVocabulary)
    /// `config.json` or `tokenizer_config.json` is malformed or describes an unsupported model.
    public static let invalidConfiguration = EmbeddingError(.invalidConfiguration)
    /// The safetensors file is truncated or its JSON header is malformed.
    public static let invalidSafetensorsHeader = EmbeddingError(.invalidSafetensorsHeader)
    /// A tensor the model needs is not in the weights file.
    public static let tensorMissing = EmbeddingError(.tensorMissing)
    /// A tensor is stored in a dtype other than F32.
    public static let unsupportedTensorType = EmbeddingError(.unsupportedTensorType)
    /// A tensor's shape differs from the one the configuration implies.
    public static let tensorShapeMismatch = EmbeddingError(.tensorShapeMismatch)

    package static func modelFileMissing(_ details: String) -> EmbeddingError {
        .init(.modelFileMissing, details: details)
    }
    package static func invalidVocabulary(_ details: String) -> EmbeddingError {
        .init(.invalidVocabulary, details: details)
    }
    package static func invalidConfiguration(_ details: String) -> EmbeddingError {
        .init(.invalidConfiguration, details: details)
    }
    package static func invalidSafetensorsHeader(_ details: String) -> EmbeddingError {
        .init(.invalidSafetensorsHeader, details: details)
    }
    package static func tensorMissing(_ details: String) -> EmbeddingError { .init(.tensorMissing, details: details) }
    package static func unsupportedTensorType(_ details: String) -> EmbeddingError {
        .init(.unsupportedTensorType, details: details)
    }
    package static func tensorShapeMismatch(_ details: String) -> EmbeddingError {
        .init(.tensorShapeMismatch, details: details)
    }
}
