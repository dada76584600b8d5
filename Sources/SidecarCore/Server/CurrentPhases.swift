import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The phases new requests run through, swapped whole on reload: a request keeps the phases it
/// started with (an in-flight stream finishes on the old configuration), the next one reads the
/// new ones.
public final class CurrentPhases: Sendable {
    private let current: Mutex<RequestPhases>

    public init(_ phases: RequestPhases) {
        self.current = Mutex(phases)
    }

    public var phases: RequestPhases { self.current.withLock { $0 } }

    func replace(with phases: RequestPhases) {
        self.current.withLock { $0 = phases }
    }
}

/// SIGHUP: reads the configuration again and, when it is valid, swaps in new phases (routing,
/// tiers, the learned router, prices, upstreams, retries, breakers, timeouts). The cache, the
/// embedder, the decision journal and the listener stay (their settings need a restart). An
/// invalid file keeps the running configuration and logs why.
struct ReloadService: Service {
    let current: CurrentPhases
    /// Loads and validates the file again, into the runtime new phases are built from.
    let load: @Sendable () throws -> SidecarRuntime
    let notifier: SystemdNotifier
    let logger: Logger
    /// Told of each configuration swapped in (the upstreams' warm connections follow it).
    var reloaded: @Sendable (SidecarRuntime) -> Void = { _ in }

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals {
                self.reload()
            }
        }
    }

    func reload() {
        self.notifier.notify("RELOADING=1\nMONOTONIC_USEC=\(Self.monotonicMicroseconds())")
        defer { self.notifier.notify("READY=1") }
        do {
            let runtime = try self.load()
            self.current.replace(with: self.current.phases.reloaded(with: runtime))
            self.reloaded(runtime)
            self.logger.info("configuration reloaded")
        } catch {
            self.logger.error(
                "configuration not reloaded; the running one stays",
                metadata: ["error": "\(error)"]
            )
        }
    }

    static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}
