import ArgumentParser
import Foundation
import SidecarCore

/// `llm-sidecar cache-probe`: JSON lines `{"id","s1","s2"}` on stdin; for each pair an empty
/// cache stores an answer for `s1` and looks `s2` up, with the configured (by default the
/// shipped) cache settings. Writes `{"id","hit","similarity"}` lines.
struct CacheProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache-probe",
        abstract: "Measure semantic cache hits: JSON lines {\"id\",\"s1\",\"s2\"} -> {\"id\",\"hit\",\"similarity\"}."
    )

    @OptionGroup var options: CommonOptions

    struct Line: Decodable {
        var id: EmbedCommand.JSONID
        var s1: String
        var s2: String
    }

    struct Output: Encodable {
        var id: EmbedCommand.JSONID
        var hit: Bool
        var similarity: Float
    }

    func run() async throws {
        let (configuration, _) = try ConfigurationLoader.load(
            path: self.options.config,
            environment: ProcessInfo.processInfo.environment
        )
        guard configuration.cache.enabled, configuration.cache.semantic else {
            throw ValidationError("cache-probe needs [cache] enabled = true and semantic = true")
        }
        let model = try LocalEmbedderLoading.cacheModel(configuration.embeddings)
        var lines: [Line] = []
        let decoder = JSONDecoder()
        while let text = readLine(strippingNewline: true) {
            if text.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            lines.append(try decoder.decode(Line.self, from: Data(text.utf8)))
        }
        let probe = CacheProbe(configuration: configuration, model: model)
        defer { probe.shutdown() }
        let outcomes = try probe.run(lines.map { ($0.s1, $0.s2) })
        let encoder = JSONEncoder()
        var out = Data()
        for (line, outcome) in zip(lines, outcomes) {
            out.append(try encoder.encode(Output(id: line.id, hit: outcome.hit, similarity: outcome.similarity)))
            out.append(0x0A)
        }
        FileHandle.standardOutput.write(out)
    }
}
