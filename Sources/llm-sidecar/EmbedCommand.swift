import ArgumentParser
import Foundation
import SidecarCore
import SidecarEmbedding

/// `llm-sidecar embed`: JSON lines `{"id","text"}` on stdin, `{"id","embedding":[...]}` on stdout,
/// computed by the built-in embedder.
struct EmbedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Embed JSON lines {\"id\",\"text\"} from stdin with the local model."
    )

    @OptionGroup var options: CommonOptions

    @Option(name: .long, help: "Texts embedded together.")
    var batchSize: Int = 32

    struct Line: Decodable {
        var id: JSONID
        var text: String
    }

    /// An `id` kept as given: a string or a number.
    enum JSONID: Codable {
        case string(String)
        case number(Double)

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let string = try? container.decode(String.self) {
                self = .string(string)
            } else {
                self = .number(try container.decode(Double.self))
            }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .string(let string): try container.encode(string)
            case .number(let number):
                if number == number.rounded(), abs(number) < 1e15 {
                    try container.encode(Int64(number))
                } else {
                    try container.encode(number)
                }
            }
        }
    }

    struct Output: Encodable {
        var id: JSONID
        var embedding: [Float]
    }

    func run() async throws {
        let (configuration, _) = try ConfigurationLoader.load(
            path: self.options.config,
            environment: ProcessInfo.processInfo.environment
        )
        let embedder: LocalEmbedder
        switch LocalEmbedderLoading.result(configuration.embeddings) {
        case .success(let loaded): embedder = loaded
        case .failure(let error):
            FileHandle.standardError.write(
                Data("llm-sidecar embed: local embedding model unavailable: \(error)\n".utf8)
            )
            throw ExitCode(1)
        }
        let decoder = JSONDecoder()
        let encoder = JSONEncoder()
        var pending: [Line] = []
        func flush() async throws {
            guard !pending.isEmpty else { return }
            let vectors = try await embedder.embed(pending.map(\.text))
            for (line, vector) in zip(pending, vectors) {
                let data = try encoder.encode(Output(id: line.id, embedding: vector))
                FileHandle.standardOutput.write(data + Data("\n".utf8))
            }
            pending.removeAll(keepingCapacity: true)
        }
        while let text = readLine(strippingNewline: true) {
            if text.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            do {
                pending.append(try decoder.decode(Line.self, from: Data(text.utf8)))
            } catch {
                throw ValidationError("bad input line (expected {\"id\",\"text\"}): \(error)")
            }
            if pending.count >= max(1, self.batchSize) { try await flush() }
        }
        try await flush()
    }
}
