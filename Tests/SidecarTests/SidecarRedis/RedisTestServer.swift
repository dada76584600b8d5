import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import SidecarRedis

/// A real `redis-server` on 127.0.0.1 and a free port, for one test; stopped by its PID.
final class RedisTestServer: Sendable {
    static let executable = "/usr/bin/redis-server"

    let port: Int
    let password: String?
    private let process = Mutex<Process?>(nil)

    /// Ports handed out in this test process, never handed out twice so that tests running
    /// in parallel never share a server.
    private static let usedPorts = Mutex<Set<Int>>([])

    /// Starts a server on a free port and waits until it answers `PING`.
    init(password: String? = nil) async throws {
        self.password = password
        var port = 0
        for _ in 0..<5 {
            port = try await Self.freePort()
            if Self.usedPorts.withLock({ $0.insert(port).inserted }) {
                break
            }
        }
        self.port = port
        try await self.start()
    }

    deinit {
        self.kill()
    }

    /// `redis://` for this server, with the password percent-encoded, and `/database` if given.
    func url(database: Int? = nil, password: String? = nil) -> String {
        let secret = password ?? self.password
        let auth = secret.map { ":\($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0)@" } ?? ""
        return "redis://\(auth)127.0.0.1:\(self.port)\(database.map { "/\($0)" } ?? "")"
    }

    /// Starts (or restarts, on the same port) the server and waits until it answers `PING`
    /// and reports this process's PID (so that it is ours, not another server on the port).
    func start() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        var arguments = [
            "--port", "\(self.port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--loglevel", "warning",
        ]
        if let password = self.password {
            arguments += ["--requirepass", password]
        }
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process.withLock { $0 = process }
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if let pid = self.servingPID() {
                try #require(pid == process.processIdentifier, "another redis-server answers on port \(self.port)")
                return
            }
            try #require(process.isRunning, "redis-server exited at start (port \(self.port) taken?)")
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("redis-server on port \(self.port) did not answer within 5 s")
        throw CancellationError()
    }

    /// Stalls every client's commands for `milliseconds` with `CLIENT PAUSE ... ALL`.
    func pauseClients(milliseconds: Int) async throws {
        try await withRedisClient(try RedisConfiguration(url: self.url())) { client in
            let reply = try await client.command(["CLIENT", "PAUSE", "\(milliseconds)", "ALL"])
            #expect(reply == .status("OK"))
        }
    }

    /// Kills the server with SIGKILL and waits for it to exit.
    func kill() {
        guard let process = self.process.withLock({ $0.take() }) else {
            return
        }
        if process.isRunning {
            Foundation.kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
    }

    /// The PID of the server answering on the port, from `INFO server`; `nil` when none answers.
    private func servingPID() -> Int32? {
        let url = RedisURL(endpoint: .tcp(host: "127.0.0.1", port: self.port), password: self.password)
        guard let connection = try? RedisConnection.open(RedisConfiguration(url: url), generation: 0),
            let info = try? connection.execute([[Array("INFO".utf8), Array("server".utf8)]]).first?.string
        else {
            return nil
        }
        connection.close()
        let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("process_id:") }
        return line.flatMap { Int32($0.dropFirst("process_id:".count)) }
    }

    /// A port the kernel hands out for a listener, free once that listener is closed.
    private static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0)
            .get()
        let port = try #require(channel.localAddress?.port)
        try await channel.close()
        return port
    }
}

/// Records every state a client reports.
final class StateRecorder: Sendable {
    private let states = Mutex<[RedisClient.State]>([])

    var recorded: [RedisClient.State] {
        self.states.withLock { $0 }
    }

    func record(_ state: RedisClient.State) {
        self.states.withLock { $0.append(state) }
    }
}

/// Runs `body` with a client for `configuration`, shutting the client down afterwards even
/// when `body` throws.
func withRedisClient(
    _ configuration: RedisConfiguration,
    states: StateRecorder? = nil,
    _ body: (RedisClient) async throws -> Void
) async throws {
    let client = try RedisClient(
        configuration: configuration,
        logger: Logger(label: "test.redis"),
        onStateChange: { state in states?.record(state) }
    )
    do {
        try await body(client)
    } catch {
        try? await client.shutdown()
        throw error
    }
    try await client.shutdown()
}

/// The error `operation` fails with as a `RedisError` (its code and message), and how long it took.
func redisFailure(
    _ operation: () async throws -> some Any
) async -> (code: RedisError.Code?, message: String, elapsed: Duration) {
    let start = ContinuousClock.now
    do {
        _ = try await operation()
        return (nil, "", ContinuousClock.now - start)
    } catch {
        let redisError = error as? RedisError
        return (redisError?.code, redisError?.message ?? "\(error)", ContinuousClock.now - start)
    }
}

extension RedisReply {
    /// A bulk string reply holding `text`.
    static func bulk(_ text: String) -> RedisReply {
        .string(ByteBuffer(string: text))
    }
}
