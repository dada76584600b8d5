import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Tells systemd how the service is doing, the way `sd_notify(3)` does (no libsystemd): one
/// datagram per message to the Unix socket named by `NOTIFY_SOCKET` (a path, or an abstract
/// socket when it starts with `@`). Without that variable every call does nothing.
///
/// `READY=1` once the listener is up, `WATCHDOG=1` at half of `WATCHDOG_USEC` while running,
/// `STOPPING=1` when the graceful shutdown starts, `RELOADING=1` ... `READY=1` around a reload.
public struct SystemdNotifier: Sendable {
    let socketPath: String?
    /// The watchdog interval systemd expects pings within, when it watches this process.
    public let watchdogInterval: Duration?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        self.socketPath = path
        var interval: Duration?
        if let text = environment["WATCHDOG_USEC"], let microseconds = Int64(text), microseconds > 0 {
            // WATCHDOG_PID, when set, names the process meant to ping.
            let pid = environment["WATCHDOG_PID"].flatMap { Int32($0) }
            if pid == nil || pid == getpid() { interval = .microseconds(microseconds) }
        }
        self.watchdogInterval = path == nil ? nil : interval
    }

    /// Whether systemd listens (`NOTIFY_SOCKET` is set).
    public var isActive: Bool { self.socketPath != nil }

    /// Sends `state` (e.g. `READY=1`); returns whether the datagram went out.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard let path = self.socketPath else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // abstract namespace
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes.first == 0 ? 0 : 1))
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                message.withUnsafeBytes { buffer in
                    sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), socketAddress, length)
                }
            }
        }
        return sent == message.count
    }
}

/// Pings systemd's watchdog while the process runs (the drain included) and says `STOPPING=1`
/// as soon as SIGTERM or SIGINT arrives (`READY=1` is sent by the application once it listens).
///
/// Its own graceful shutdown comes after the server's (services stop in reverse order), so it
/// watches the signals itself rather than waiting for its turn.
struct SystemdWatchdogService: Service {
    let notifier: SystemdNotifier
    let logger: Logger

    func run() async throws {
        guard self.notifier.isActive else {
            try? await gracefulShutdown()
            return
        }
        let notifier = self.notifier
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in signals {
                    notifier.notify("STOPPING=1")
                    break
                }
            }
            if let interval = notifier.watchdogInterval {
                let period = interval / 2
                self.logger.info(
                    "systemd watchdog on",
                    metadata: ["watchdog.period_ms": "\(period / .milliseconds(1))"]
                )
                group.addTask {
                    while !Task.isCancelled {
                        notifier.notify("WATCHDOG=1")
                        try? await Task.sleep(for: period)
                    }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
    }
}
