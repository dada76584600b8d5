import ArgumentParser
import Foundation
import SidecarCore

/// `llm-sidecar check`: validates the configuration, probes each upstream, prints a table.
/// Exits 2 on an invalid configuration and 1 when an upstream cannot be reached.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate the configuration and probe the upstreams."
    )

    @OptionGroup var options: CommonOptions

    func run() async throws {
        let (configuration, source) = try ConfigurationLoader.load(
            path: self.options.config,
            environment: ProcessInfo.processInfo.environment
        )
        let access = try configuration.validateAccess(
            environment: ProcessInfo.processInfo.environment,
            file: "\(source)"
        )
        print("configuration: \(source): ok")
        for warning in access { print("warning: \(warning)") }
        let runtime = SidecarRuntime(configuration: configuration, environment: ProcessInfo.processInfo.environment)
        let results = await UpstreamProbe(directory: runtime.directory).probeAll()

        var rows = [["UPSTREAM", "BASE URL", "STATUS", "LATENCY", "KEY", "MODELS"]]
        for result in results {
            rows.append([
                result.upstream, result.baseURL, result.status,
                result.latencyMilliseconds.map { "\($0) ms" } ?? "-",
                result.missingKeyVariable.map { "$\($0) unset" } ?? "ok",
                result.models.isEmpty ? "-" : "\(result.models.count) listed",
            ])
        }
        print(Self.table(rows))
        for warning in Self.plainHTTPWarnings(runtime.directory) { print("warning: \(warning)") }
        var modelRows = [["MODEL", "UPSTREAM", "USD/MTOK IN", "USD/MTOK OUT", "LISTED BY UPSTREAM"]]
        for model in configuration.models {
            let listed = results.first { $0.upstream == model.upstream }.map { result in
                result.models.isEmpty ? "unknown" : (result.models.contains(model.name) ? "yes" : "no")
            }
            modelRows.append([
                model.name, model.upstream, "\(model.inputUSDPerMTok)", "\(model.outputUSDPerMTok)",
                listed ?? "unknown",
            ])
        }
        print(Self.table(modelRows))
        let tiers = configuration.routing.tiers.map { "score < \($0.maxScore) -> \($0.model)" }
        print("routing (\(configuration.routing.mode.rawValue)): " + tiers.joined(separator: "; "))
        print("local embeddings: " + LocalEmbedderLoading.describe(configuration.embeddings))
        print("router: " + RouterLoading.describe(configuration.routing))
        if results.contains(where: { !$0.reachable }) {
            throw ExitCode(1)
        }
    }

    /// One line per upstream reached over plain HTTP beyond this machine's loopback.
    static func plainHTTPWarnings(_ directory: UpstreamDirectory) -> [String] {
        directory.names.compactMap { name in
            guard let entry = directory.entry(name), entry.isPlainHTTPBeyondLoopback else { return nil }
            let what = entry.authorization == nil ? "prompts and answers" : "prompts, answers and its key"
            return "upstream \"\(name)\" is plain http:// beyond loopback (\(entry.baseURL)): \(what) cross the "
                + "network unencrypted; use https://"
        }
    }

    static func table(_ rows: [[String]]) -> String {
        let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n") + "\n"
    }
}
