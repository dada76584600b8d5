import CoreMetrics
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

@testable import SidecarCore
@testable import SidecarEmbedding
@testable import SidecarOpenAI

/// Locates the installed model and the shared reference vectors; the reference tests are
/// skipped (not passed) when either is absent.
enum MiniLMFixture {
    /// The package root: this file is `<root>/Tests/SidecarTests/SidecarEmbedding/<file>.swift`.
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

    /// Loaded once for all tests (loading maps 90 MB and copies the layers): the default
    /// embedder, bfloat16 dense layers where the CPU supports them.
    static let embedder: Result<MiniLMEmbedder, any Error> = Result {
        try MiniLMEmbedder(modelDirectory: modelDirectory)
    }

    /// The same model with FP32 (OpenBLAS) dense layers forced.
    static let float32Embedder: Result<MiniLMEmbedder, any Error> = Result {
        try MiniLMEmbedder(modelDirectory: modelDirectory, precision: .float32)
    }

    /// Every dense-layer precision this CPU runs: FP32 always, bfloat16 with AVX-512 BF16.
    static let precisions: [DensePrecision] = DensePrecision.bfloat16IsSupported ? [.float32, .bfloat16] : [.float32]

    static func embedder(_ precision: DensePrecision) throws -> MiniLMEmbedder {
        let embedder = try (precision == .float32 ? float32Embedder : embedder).get()
        #expect(embedder.precision == precision)
        return embedder
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

    @Test(arguments: MiniLMFixture.precisions)
    func embeddingsMatchReferenceWithCosineAtLeast09999(precision: DensePrecision) throws {
        let reference = try MiniLMFixture.reference()
        let embedder = try MiniLMFixture.embedder(precision)
        let vectors = try embedder.embedBlocking(reference.sentences)
        #expect(vectors.count == reference.embeddings.count)
        for (index, (vector, expected)) in zip(vectors, reference.embeddings).enumerated() {
            #expect(vector.count == 384)
            let cosine = MiniLMFixture.cosine(vector, expected)
            #expect(cosine >= 0.9999, "\(precision) sentence \(index): cosine \(cosine)")
        }
    }

    @Test(.enabled(if: DensePrecision.bfloat16IsSupported, "CPU lacks AVX-512 BF16"))
    func bfloat16StaysWithinCosine09999OfFloat32OnVariedTexts() throws {
        let texts = [
            "hi", "What's France's capital city?", "a man is playing a large flute .",
            "Write a Python function that merges two sorted lists, then explain its time complexity.",
            String(repeating: "Long inputs accumulate rounding over many tokens, layer after layer. ", count: 20),
            "Ünïcödé, émojis 🙂 and numbers 3.14159 mixed: 北京, Москва, القاهرة.",
        ]
        let float32 = try MiniLMFixture.embedder(.float32).embedBlocking(texts)
        let bfloat16 = try MiniLMFixture.embedder(.bfloat16).embedBlocking(texts)
        for (text, (wide, narrow)) in zip(texts, zip(float32, bfloat16)) {
            let cosine = MiniLMFixture.cosine(wide, narrow)
            #expect(cosine >= 0.9999, "\(text.prefix(30)): cosine \(cosine)")
        }
    }

    @Test(arguments: MiniLMFixture.precisions)
    func batchedResultsEqualOneAtATimeResults(precision: DensePrecision) throws {
        let reference = try MiniLMFixture.reference()
        let embedder = try MiniLMFixture.embedder(precision)
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

/// `/v1/embeddings` for the local model through the live sidecar.
@Suite(.enabled(if: MiniLMFixture.modelIsInstalled, "all-MiniLM-L6-v2 is not installed (scripts/install-model.sh)"))
struct LocalEmbeddingsLiveTests {
    static func run(_ body: @Sendable (SidecarTestClient) async throws -> Void) async throws {
        let embedder = LocalEmbedder(model: try MiniLMFixture.embedder.get())
        let config = try SidecarHarness.configuration(port: 1)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let app = SidecarApplication.make(
            runtime: SidecarRuntime(configuration: config, environment: [:], localEmbedder: embedder),
            listen: ListenAddress(host: "127.0.0.1", port: 0),
            metricsFactory: NOOPMetricsHandler.instance,
            logger: logger
        )
        try await app.test { client in try await body(client) }
    }

    @Test func servesFloatAndBase64VectorsMatchingTheEmbedder() async throws {
        try await Self.run { client in
            let text = "What is the capital of France?"
            let expected = try await LocalEmbedder(model: try MiniLMFixture.embedder.get()).embed([text])[0]
            let body = ByteBuffer(string: #"{"model":"all-MiniLM-L6-v2","input":"\#(text)"}"#)
            try await client.execute(uri: "/v1/embeddings", method: .post, body: body) { response in
                #expect(response.status == .ok)
                #expect(response.headers[SidecarHeaders.queryCost] == "0")
                let json =
                    try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                let data = (json?["data"] as? [[String: Any]])?.first
                let vector = (data?["embedding"] as? [Double])?.map(Float.init) ?? []
                #expect(vector == expected)
                #expect((json?["usage"] as? [String: Any])?["prompt_tokens"] as? Int == 9)
            }
            let base64Body = ByteBuffer(
                string: #"{"model":"all-MiniLM-L6-v2","input":["\#(text)"],"encoding_format":"base64"}"#
            )
            try await client.execute(uri: "/v1/embeddings", method: .post, body: base64Body) { response in
                let json =
                    try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                let encoded = ((json?["data"] as? [[String: Any]])?.first?["embedding"] as? String) ?? ""
                let bytes = Data(base64Encoded: encoded) ?? Data()
                let vector = stride(from: 0, to: bytes.count, by: 4).map { offset in
                    Float(
                        bitPattern: bytes[offset..<offset + 4].enumerated().reduce(UInt32(0)) {
                            $0 | UInt32($1.element) << (8 * UInt32($1.offset))
                        }
                    )
                }
                #expect(vector == expected)
            }
        }
    }

    @Test func rejectsTokenInputAndWrongDimensions() async throws {
        try await Self.run { client in
            for body in [
                #"{"model":"all-MiniLM-L6-v2","input":[[1,2,3]]}"#,
                #"{"model":"all-MiniLM-L6-v2","input":"x","dimensions":128}"#,
                #"{"model":"all-MiniLM-L6-v2","input":"x","encoding_format":"int8"}"#,
            ] {
                try await client.execute(uri: "/v1/embeddings", method: .post, body: ByteBuffer(string: body)) {
                    #expect($0.status == .badRequest)
                }
            }
        }
    }

    @Test func batchesAreSplitAcrossCoresInOrder() async throws {
        let model = try MiniLMFixture.embedder.get()
        let texts = (0..<20).map { "sentence number \($0) about topic \($0 % 3)" }
        let parallel = try await LocalEmbedder(model: model, parallelism: 3).embed(texts)
        let serial = try model.embedBlocking(texts)
        #expect(parallel.count == serial.count)
        for (a, b) in zip(parallel, serial) {
            #expect(zip(a, b).allSatisfy { abs($0 - $1) < 1e-5 })
        }
    }
}

@Suite struct LocalEmbedderSplitTests {
    @Test func splitCoversEveryIndexOnceInOrder() {
        let texts = (0..<64).map { String(repeating: "x", count: $0 % 7 * 10) }
        for parts in 1...5 {
            let ranges = LocalEmbedder.split(texts, into: parts)
            #expect(ranges.count == parts)
            #expect(ranges.flatMap { Array($0) } == Array(0..<64))
        }
        #expect(LocalEmbedder.split(["a"], into: 4) == [0..<1])
    }
}

@Suite struct LocalEmbedderUnavailableTests {
    @Test func localModelWithoutFilesIs503NamingTheInstallScript() async throws {
        let config = try SidecarHarness.configuration(port: 1)
        let app = SidecarApplication.make(
            runtime: SidecarRuntime(configuration: config, environment: [:]),
            listen: ListenAddress(host: "127.0.0.1", port: 0),
            metricsFactory: NOOPMetricsHandler.instance,
            logger: Logger(label: "test")
        )
        try await app.test { client in
            let body = ByteBuffer(string: #"{"model":"all-MiniLM-L6-v2","input":"x"}"#)
            try await client.execute(uri: "/v1/embeddings", method: .post, body: body) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("install-model.sh"))
            }
        }
    }
}

@Suite struct DeferredEmbedderTests {
    @Test func prepareFailsWhenTheModelIsMissing() {
        let result = DeferredEmbedder.prepare(directory: URL(fileURLWithPath: "/nonexistent/model"), servedAs: "m")
        #expect((try? result.get()) == nil)
    }

    @Test(.enabled(if: MiniLMFixture.modelIsInstalled, "all-MiniLM-L6-v2 is not installed"))
    func concurrentFirstCallsShareOneLoadAndMatchTheEagerEmbedder() async throws {
        let deferred = try DeferredEmbedder.prepare(directory: MiniLMFixture.modelDirectory, servedAs: "m").get()
        #expect(deferred.dimensions == 384)
        let texts = ["first text", "second text"]
        async let a = deferred.embed(texts)
        async let b = deferred.embed(texts)
        let (first, second) = try await (a, b)
        let eager = try MiniLMFixture.embedder.get().embedBlocking(texts)
        #expect(first == second)
        for (x, y) in zip(first, eager) { #expect(zip(x, y).allSatisfy { abs($0 - $1) < 1e-5 }) }
        let tokens = try await deferred.tokenCount("first text")
        #expect(tokens == 4)
    }
}
