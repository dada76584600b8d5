import Foundation
import Synchronization
import Testing

@testable import SidecarCore

/// Locates the installed model and the shared reference vectors; the reference tests are
/// skipped (not passed) when either is absent.
enum MiniLMFixture {
    /// The package root: this file is `<root>/Tests/SidecarCoreTests/Embedding/<file>.swift`.
    static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath()
        for _ in 0..<4 {
            url.deleteLastPathComponent()
        }
        return url
    }()

    /// `$LLM_SIDECAR_MODELS_DIR/all-MiniLM-L6-v2`, default `<package root>/models/...`.
    static let modelDirectory: URL = {
        let models = ProcessInfo.processInfo.environment["LLM_SIDECAR_MODELS_DIR"].flatMap { $0.isEmpty ? nil : $0 }
        let base = models.map { URL(fileURLWithPath: $0) } ?? packageRoot.appendingPathComponent("models")
        return base.appendingPathComponent("all-MiniLM-L6-v2")
    }()

    /// `shared/eval/embeddings/minilm_reference_vectors.json`, beside the repository.
    static let referenceFile = packageRoot.appendingPathComponent(
        "../shared/eval/embeddings/minilm_reference_vectors.json"
    ).standardizedFileURL

    static var modelIsInstalled: Bool {
        ["config.json", "vocab.txt", "model.safetensors"].allSatisfy {
            FileManager.default.fileExists(atPath: modelDirectory.appendingPathComponent($0).path)
        }
    }

    static var referenceIsPresent: Bool {
        FileManager.default.fileExists(atPath: referenceFile.path)
    }

    struct Reference: Decodable {
        var sentences: [String]
        var tokenIDs: [[Int32]]
        var embeddings: [[Float]]

        enum CodingKeys: String, CodingKey {
            case sentences
            case tokenIDs = "token_ids"
            case embeddings
        }
    }

    static func reference() throws -> Reference {
        try JSONDecoder().decode(Reference.self, from: Data(contentsOf: referenceFile))
    }

    /// Loaded once for all tests (loading maps 90 MB and copies the layers).
    static let embedder: Result<MiniLMEmbedder, any Error> = Result {
        try MiniLMEmbedder(modelDirectory: modelDirectory)
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Float {
        let dot = zip(a, b).reduce(0) { $0 + $1.0 * $1.1 }
        let norms = a.reduce(0) { $0 + $1 * $1 }.squareRoot() * b.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return dot / norms
    }
}

@Suite(
    .enabled(if: MiniLMFixture.modelIsInstalled, "model not installed: run scripts/install-model.sh"),
    .enabled(if: MiniLMFixture.referenceIsPresent, "reference vectors not found beside the repository")
)
struct MiniLMReferenceTests {
    @Test func tokenIdsMatchReferenceExactly() throws {
        let reference = try MiniLMFixture.reference()
        let embedder = try MiniLMFixture.embedder.get()
        #expect(reference.sentences.count == reference.tokenIDs.count)
        for (sentence, expected) in zip(reference.sentences, reference.tokenIDs) {
            #expect(embedder.tokenize(sentence) == expected, "\(sentence)")
        }
    }

    @Test func embeddingsMatchReferenceWithCosineAtLeast09999() throws {
        let reference = try MiniLMFixture.reference()
        let embedder = try MiniLMFixture.embedder.get()
        let vectors = try embedder.embedBlocking(reference.sentences)
        #expect(vectors.count == reference.embeddings.count)
        for (index, (vector, expected)) in zip(vectors, reference.embeddings).enumerated() {
            #expect(vector.count == 384)
            let cosine = MiniLMFixture.cosine(vector, expected)
            #expect(cosine >= 0.9999, "sentence \(index): cosine \(cosine)")
        }
    }

    @Test func batchedResultsEqualOneAtATimeResults() throws {
        let reference = try MiniLMFixture.reference()
        let embedder = try MiniLMFixture.embedder.get()
        let texts = reference.sentences + ["", String(repeating: "a much longer sentence ", count: 40)]
        let batched = try embedder.embedBlocking(texts)
        for (text, vector) in zip(texts, batched) {
            let single = try embedder.embedBlocking([text])[0]
            let difference = zip(single, vector).map { abs($0 - $1) }.max() ?? 0
            #expect(difference < 1e-5, "\(text.prefix(30)): max difference \(difference)")
        }
    }

    @Test func returnsUnitLengthVectorsOfModelDimension() throws {
        let embedder = try MiniLMFixture.embedder.get()
        #expect(embedder.dimensions == 384)
        #expect(embedder.modelName == "all-MiniLM-L6-v2")
        let vectors = try embedder.embedBlocking(["hello", "", String(repeating: "token ", count: 1000)])
        for vector in vectors {
            #expect(vector.count == 384)
            let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - 1) < 1e-4)
        }
        #expect(try embedder.embedBlocking([]).isEmpty)
    }

    @Test func truncatesLongTextsToTwoHundredFiftySixTokens() throws {
        let embedder = try MiniLMFixture.embedder.get()
        let ids = embedder.tokenize(String(repeating: "The quick brown fox. ", count: 200))
        #expect(ids.count == 256)
        #expect(ids.first == 101 && ids.last == 102)
    }

    @Test func similarSentencesAreCloserThanUnrelatedOnes() throws {
        let embedder = try MiniLMFixture.embedder.get()
        let vectors = try embedder.embedBlocking([
            "What is the capital of France?", "What's France's capital city?", "How do I bake sourdough bread?",
        ])
        #expect(MiniLMFixture.cosine(vectors[0], vectors[1]) > MiniLMFixture.cosine(vectors[0], vectors[2]) + 0.3)
    }
}

struct MiniLMEmbedderLoadingTests {
    @Test func reportsMissingModelDirectoryAsModelFileMissing() {
        #expect(throws: EmbeddingError.modelFileMissing) {
            try MiniLMEmbedder(modelDirectory: URL(fileURLWithPath: "/nonexistent/all-MiniLM-L6-v2"))
        }
    }
}

extension MiniLMReferenceTests {
    @Test func concurrentCallersGetTheSameVectorsAsASingleCaller() throws {
        let reference = try MiniLMFixture.reference()
        let embedder = try MiniLMFixture.embedder.get()
        let expected = try embedder.embedBlocking(reference.sentences)
        let results = Mutex<[[[Float]]]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { iteration in
            let texts = iteration.isMultiple(of: 2) ? reference.sentences : reference.sentences.reversed()
            var vectors = (try? embedder.embedBlocking(texts)) ?? []
            if !iteration.isMultiple(of: 2) {
                vectors.reverse()
            }
            results.withLock { $0.append(vectors) }
        }
        let all = results.withLock { $0 }
        #expect(all.count == 4)
        for vectors in all {
            #expect(vectors.count == expected.count)
            for (vector, want) in zip(vectors, expected) {
                #expect(zip(vector, want).allSatisfy { abs($0 - $1) < 1e-5 })
            }
        }
    }
}
