import ArgumentParser
import Foundation
import SidecarCore
import SidecarEmbedding
import SidecarOpenAI
import SidecarPolicy

/// `llm-sidecar route`: JSON lines `{"id","prompt"}` or `{"id","messages"}` on stdin, the routing
/// decision `{"id","score","router","tier","model","features"}` on stdout. Nothing is forwarded.
struct RouteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "route",
        abstract: "Score and route JSON lines {\"id\",\"prompt\"|\"messages\"} from stdin."
    )

    @OptionGroup var options: CommonOptions

    @Option(name: .long, help: "A learned router's directory (default: routing.router from the config).")
    var router: String?

    struct Output: Encodable {
        var id: EmbedCommand.JSONID
        var score: Double
        var router: String
        var tier: Int?
        var model: String
        var features: [String: Double]
    }

    func run() async throws {
        let (configuration, _) = try ConfigurationLoader.load(
            path: self.options.config,
            environment: ProcessInfo.processInfo.environment
        )
        let scoring = try PromptScoring(configuration: configuration, routerOption: self.router)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try scoring.scoreLines { id, score in
            let decision = scoring.selector.select(requestedModel: nil, pinHeader: false, score: score)
            let output = Output(
                id: id,
                score: score.value,
                router: score.router.rawValue,
                tier: decision.tier,
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

/// `llm-sidecar calibrate --strong-share X`: the threshold that sends that share of a sample of
/// prompts (JSON lines, as `route` reads them) to the strong tier.
struct CalibrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Print the score threshold that sends a given share of the prompts on stdin to the strong tier."
    )

    @OptionGroup var options: CommonOptions

    @Option(name: .long, help: "The share of prompts (0..1) that should go to the strong tier.")
    var strongShare: Double

    @Option(name: .long, help: "A learned router's directory (default: routing.router from the config).")
    var router: String?

    struct Output: Encodable {
        var threshold: Double
        var strongShare: Double
        var measuredStrongShare: Double
        var prompts: Int
        var router: String
        var learnedShare: Double

        enum CodingKeys: String, CodingKey {
            case threshold, prompts, router
            case strongShare = "strong_share"
            case measuredStrongShare = "measured_strong_share"
            case learnedShare = "learned_share"
        }
    }

    func validate() throws {
        guard self.strongShare.isFinite, (0...1).contains(self.strongShare) else {
            throw ValidationError("--strong-share must be between 0 and 1, found \(self.strongShare)")
        }
    }

    func run() async throws {
        let (configuration, _) = try ConfigurationLoader.load(
            path: self.options.config,
            environment: ProcessInfo.processInfo.environment
        )
        let scoring = try PromptScoring(configuration: configuration, routerOption: self.router)
        var scores: [Double] = []
        var learned = 0
        try scoring.scoreLines { _, score in
            scores.append(score.value)
            if score.router == .learned { learned += 1 }
        }
        guard !scores.isEmpty else { throw ValidationError("no prompts on stdin") }
        let threshold = CalibrationThreshold.threshold(scores: scores, strongShare: self.strongShare)
        let strong = scores.filter { $0 >= threshold }.count
        let output = Output(
            threshold: (threshold * 10_000).rounded() / 10_000,
            strongShare: self.strongShare,
            measuredStrongShare: Double(strong) / Double(scores.count),
            prompts: scores.count,
            router: scoring.scorer.learned == nil ? "heuristic" : "learned",
            learnedShare: Double(learned) / Double(scores.count)
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        FileHandle.standardOutput.write(try encoder.encode(output) + Data("\n".utf8))
        FileHandle.standardError.write(
            Data(
                ("Set the max_score of the tier below the strong one to \(output.threshold): scores at or above it "
                    + "go to the strong tier (\(Int((output.measuredStrongShare * 100).rounded()))% of these prompts).\n")
                    .utf8
            )
        )
    }
}

/// Scores JSON lines as the sidecar would: the heuristic, and the learned router over each
/// prompt's embedding when one is loaded (embedded in batches, up front).
struct PromptScoring {
    struct Line: Decodable {
        struct Message: Decodable {
            var role: String
            var content: String?
        }

        var id: EmbedCommand.JSONID
        var prompt: String?
        var messages: [Message]?
    }

    let scorer: RoutingScorer
    let selector: RouteSelector
    let model: MiniLMEmbedder?
    static let batch = 32

    init(configuration: SidecarConfiguration, routerOption: String?) throws {
        let learned = try RouterLoading.load(option: routerOption, configuration: configuration.routing)
        self.scorer = RoutingScorer(learned: learned)
        self.selector = SidecarRuntime(configuration: configuration, environment: [:]).selector
        if learned != nil {
            do {
                self.model = try LocalEmbedderLoading.cacheModel(configuration.embeddings)
            } catch {
                throw ValidationError("the learned router needs the embedding model: \(error)")
            }
        } else {
            self.model = nil
        }
    }

    /// Reads stdin to its end, calling `body` with each line's id and score, in order.
    func scoreLines(_ body: (EmbedCommand.JSONID, ComplexityScore) throws -> Void) throws {
        let decoder = JSONDecoder()
        var pending: [(EmbedCommand.JSONID, ScoringInput)] = []
        func flush() throws {
            let embeddings = try self.model.map { model in
                try model.embedBlocking(pending.map { $0.1.lastUserText }).map(unitLength)
            }
            for (index, (id, input)) in pending.enumerated() {
                try body(id, self.scorer.score(input, embedding: embeddings?[index]))
            }
            pending.removeAll(keepingCapacity: true)
        }
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
            pending.append((line.id, input))
            if pending.count >= Self.batch { try flush() }
        }
        try flush()
    }
}
