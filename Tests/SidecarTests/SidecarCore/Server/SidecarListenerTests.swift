import Logging
import NIOCore
import NIOPosix
import Testing

@testable import SidecarCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The listener: a socket per event loop on one port, and a port another process holds is
/// refused (`SO_REUSEPORT` must not let a second sidecar share it).
struct SidecarListenerTests {
    @Test func aSecondSidecarOnTheSamePortIsRefused() async throws {
        let configuration = try SidecarHarness.configuration(port: closedPort())
        try await SidecarHarness.run(configuration) { client, port, _ in
            let second = SidecarApplication.make(
                runtime: SidecarRuntime(configuration: configuration, environment: [:]),
                listen: ListenAddress(host: "127.0.0.1", port: port),
                logger: Logger(label: "second")
            )
            // It must fail at once; one that started (sharing the port) is stopped after 10 s.
            let outcome: String = await withTaskGroup(of: String.self) { group in
                group.addTask {
                    do {
                        try await second.runService(gracefulShutdownSignals: [])
                        return "stopped without an error"
                    } catch is CancellationError {
                        return "started: it shares the port"
                    } catch {
                        return "refused"
                    }
                }
                group.addTask {
                    try? await Task.sleep(for: .seconds(10))
                    return "timeout"
                }
                let first = await group.next() ?? "none"
                group.cancelAll()
                return first == "timeout" ? await group.next() ?? "none" : first
            }
            #expect(outcome == "refused")
            // The first one still answers.
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func everyConnectionIsAnsweredWhicheverSocketTookIt() async throws {
        let configuration = try SidecarHarness.configuration(port: closedPort())
        try await SidecarHarness.run(configuration) { _, port, _ in
            // Many short connections: the kernel spreads them over the listening sockets; each
            // is answered (none waits on a loop that does not accept).
            for _ in 0..<40 {
                let answer = try await RawHTTPClient.exchange(
                    port: port,
                    "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                )
                #expect(answer.status == 200)
            }
        }
    }

    /// The check that a port is not another process's binds without listening: a client that
    /// connects in that moment is refused (it retries), not accepted by a socket that then
    /// closes with its connection left open and unanswered.
    @Test func thePortCheckNeverListens() throws {
        let (held, port) = try loopbackSocket(listeningWithBacklog: nil)
        close(held)
        var connected: Bool?
        try SidecarListener.checkPortIsFree(host: "127.0.0.1", port: port) {
            connected = try loopbackConnects(to: port)
        }
        #expect(connected == false)
    }

    @Test func thePortCheckRefusesAPortAnotherSocketListensOn() throws {
        let (held, port) = try loopbackSocket(listeningWithBacklog: 8)
        defer { close(held) }
        #expect(throws: IOError.self) { try SidecarListener.checkPortIsFree(host: "127.0.0.1", port: port) }
    }
}
