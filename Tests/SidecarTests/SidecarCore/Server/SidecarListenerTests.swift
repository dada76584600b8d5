import Foundation
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

    /// A Unix socket path a process listens on is refused (binding would have removed the file,
    /// taking the path from the running sidecar); a stale socket file, or none, is not.
    @Test func aUnixSocketPathAnotherProcessListensOnIsRefused() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/sidecar.sock"
        #expect(throws: Never.self) { try SidecarListener.checkSocketPathIsFree(path) }
        let listening = try unixSocket(at: path, listening: true)
        #expect(throws: IOError.self) { try SidecarListener.checkSocketPathIsFree(path) }
        close(listening)
        // The file is left behind, with nothing listening: a crashed sidecar's.
        #expect(FileManager.default.fileExists(atPath: path))
        #expect(throws: Never.self) { try SidecarListener.checkSocketPathIsFree(path) }
    }

    private func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("listener-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A Unix stream socket bound at `path`, listening if asked. The caller closes it.
    private func unixSocket(at path: String, listening: Bool) throws -> Int32 {
        let address = try SocketAddress(unixDomainSocketPath: path)
        #if canImport(Glibc)
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(AF_UNIX, SOCK_STREAM, 0)
        #endif
        try #require(descriptor >= 0)
        let bound = address.withSockAddr { pointer, size in
            bind(descriptor, pointer, socklen_t(size)) == 0 && (!listening || listen(descriptor, 4) == 0)
        }
        try #require(bound)
        return descriptor
    }
}
