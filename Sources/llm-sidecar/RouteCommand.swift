import ArgumentParser
import Foundation
import SidecarCore
import SidecarOpenAI
import SidecarPolicy

/// `llm-sidecar route`: JSON lines `{"id","prompt"}` or `{"id","messages"}` on stdin, the routing
/// decision `{"id","score","tier","model","features"}` on stdout. Nothing is forwarded.
struct RouteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "route",
        abstract: "Score and route JSON lines {\"id\",\"prompt\"|\"messages\"} from stdin."
    )

    @OptionGroup var options: CommonOptions

    struct Line: Decodable {
        struct Message: Decodable {
            var role: String
            var content: String?
        }

        var id: EmbedCommand.JSONID
        var prompt: String?
        var messages: [Message]?
    }

    struct Output: Encodable {
        var id: EmbedCommand.JSONID
        var score: Double
        var tier: Int?
        var model: String
        var features: [String: Double]
    }

    func run() async throws {
        let (configuration, _) = try ConfigurationLoader.load(path: self.options.config)
        let runtime = SidecarRuntime(configuration: configuration, environment: [:])
        let decoder = JSONDecoder()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        while let text = readLine(strippingNewline: true) {
            if text.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let line: Line
            do {
                line = try decoder.decode(Line.self, from: Data(text.utf8))
            } catch {
                throw ValidationError(
                    "bad input line (expected {\"id\",\"prompt\"} or {\"id\",\"messages\"}): \(error)"
                )
            }
            let input: ScoringInput
            if let messages = line.messages {
                input = ScoringInput(messages: messages.map { .init(role: $0.role, text: $0.content ?? "") })
            } else {
                input = ScoringInput(prompt: line.prompt ?? "")
            }
            let score = runtime.scorer.score(input)
            let decision = runtime.selector.select(requestedModel: nil, pinHeader: false, score: score)
            var tier: Int?
            if case .tier(let index) = decision.reason { tier = index }
            let output = Output(
                id: line.id,
                score: score.value,
                tier: tier,
                model: decision.model,
                features: Dictionary(
                    score.features.map { ($0.name, $0.value) },
                    uniquingKeysWith: { first, _ in first }
                )
            )
            FileHandle.standardOutput.write(try encoder.encode(output) + Data("\n".utf8))
        }
    }
}
