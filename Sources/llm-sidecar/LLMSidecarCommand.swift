import ArgumentParser
import Foundation
import Logging
import SidecarCore
import SidecarEmbedding

/// `llm-sidecar`: an OpenAI-compatible gateway for one host. `serve` is the default subcommand.
@main
struct LLMSidecarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llm-sidecar",
        abstract: "A local OpenAI-compatible gateway: routes by complexity, prices every answer.",
        version: SidecarCoreVersion.string,
        subcommands: [
            ServeCommand.self, CheckCommand.self, RouteCommand.self, CalibrateCommand.self, EmbedCommand.self,
            CacheProbeCommand.self,
        ],
        defaultSubcommand: ServeCommand.self
    )

    /// Exit codes: 0 ok, 1 runtime failure, 2 bad usage or invalid configuration.
    static func main() async {
        do {
            var command = try Self.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data("llm-sidecar: invalid configuration: \(error)\n".utf8))
            Foundation.exit(2)
        } catch {
            let code = Self.exitCode(for: error)
            if code == .success {
                print(Self.fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data((Self.fullMessage(for: error) + "\n").utf8))
            Foundation.exit(code == .validationFailure ? 2 : (code.rawValue == 0 ? 1 : code.rawValue))
        }
    }
}

/// Options shared by the subcommands.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "Configuration file (default: ./sidecar.conf, then /etc/llm-sidecar/sidecar.conf).")
    var config: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: self.logLevel) != nil else {
            throw ValidationError("unknown log level \"\(self.logLevel)\"")
        }
    }
}
