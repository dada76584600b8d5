import NIOCore
import NIOPosix
import Testing

@testable import SidecarRedis

/// A real `redis-server` that dies, stalls, comes back, or is absent; and shutting down.
@Suite(.timeLimit(.minutes(1)))
struct RedisClientOutageTests {
    private static let fastBackoff = RedisConfiguration.Backoff(
        initial: .milliseconds(50),
        maximum: .milliseconds(200)
    )

    @Test func serverKilledMidCallFailsFastThenTheClientReconnectsByItself() async throws {
        let server = try await RedisTestServer()
        var configuration = try RedisConfiguration(url: server.url())
        configuration.commandTimeout = .seconds(4)
        configuration.reconnectBackoff = Self.fastBackoff
        let states = StateRecorder()
        try await withRedisClient(configuration, states: states) { client in
            for index in 0..<8 {
                #expect(try await client.command(["SET", "k\(index)", "v"]) == .status("OK"))
            }
            // Pause the server so that the next calls are in flight when it dies.
            try await server.pauseClients(milliseconds: 5000)
            let loop = MultiThreadedEventLoopGroup.singleton.any()
            let start = ContinuousClock.now
            let inFlight = (0..<6).map { client.command(["GET", "k\($0)"], on: loop) }
            try await Task.sleep(for: .milliseconds(100))
            server.kill()
            for call in inFlight {
                let failure = await redisFailure { try await call.get() }
                #expect(failure.code == .unavailable)
            }
            // Killed at 100 ms: each failed on the broken connection, well before the 4 s timeout
            // (the margin is for a loaded CI machine).
            #expect(ContinuousClock.now - start < .milliseconds(3000))
            #expect(client.state == .down)

            let whileDown = await redisFailure { try await client.command(["GET", "k0"]) }
            #expect(whileDown.code == .unavailable)
            // Failed by the down state, without trying to connect.
            #expect(whileDown.message.contains("redis is down"))
            #expect(whileDown.elapsed < .seconds(1))  // no connect attempt (a loaded machine is slow)
            #expect(states.recorded == [.down])

            try await server.start()
            #expect(try await eventually(within: .seconds(3)) { client.isAvailable })
            #expect(try await client.command(["SET", "after", "restart"]) == .status("OK"))
            #expect(try await client.command(["GET", "after"]) == .bulk("restart"))
            #expect(states.recorded == [.down, .up])
        }
    }

    @Test func aStalledServerFailsTheCallWithinTheCommandTimeout() async throws {
        let server = try await RedisTestServer()
        let states = StateRecorder()
        try await withRedisClient(try RedisConfiguration(url: server.url()), states: states) { client in
            #expect(try await client.command(["SET", "k", "v"]) == .status("OK"))
            // Paused well past the bound below, so a loaded machine's slowness leaves a margin.
            try await server.pauseClients(milliseconds: 6000)
            let stalled = await redisFailure { try await client.command(["GET", "k"]) }
            #expect(stalled.code == .timeout)
            #expect(stalled.elapsed >= .milliseconds(200))
            #expect(stalled.elapsed < .milliseconds(4500))
            #expect(client.state == .down)
            let whileDown = await redisFailure { try await client.command(["GET", "k"]) }
            #expect(whileDown.code == .unavailable)
            // Failed by the down state, without trying to connect.
            #expect(whileDown.message.contains("redis is down"))
            #expect(whileDown.elapsed < .seconds(1))  // no connect attempt (a loaded machine is slow)
            // The reconnect probe sends PING, so the client stays down until the pause ends.
            #expect(try await eventually(within: .seconds(12)) { client.isAvailable })
            #expect(try await client.command(["GET", "k"]) == .bulk("v"))
            #expect(states.recorded == [.down, .up])
        }
    }

    @Test func noServerAtStartFailsOnceThenFailsFastUntilTheServerAppears() async throws {
        let server = try await RedisTestServer()
        server.kill()
        var configuration = try RedisConfiguration(url: server.url())
        configuration.reconnectBackoff = Self.fastBackoff
        // A refused connection fails at once, far inside the connect timeout (long here, so a
        // loaded machine's slowness cannot pass for one).
        configuration.connectTimeout = .seconds(10)
        let states = StateRecorder()
        try await withRedisClient(configuration, states: states) { client in
            #expect(client.isAvailable)
            let refused = await redisFailure { try await client.command(["PING"]) }
            #expect(refused.code == .unavailable)
            #expect(refused.elapsed < .seconds(4))
            let whileDown = await redisFailure { try await client.command(["PING"]) }
            #expect(whileDown.code == .unavailable)
            // Failed by the down state, without trying to connect.
            #expect(whileDown.message.contains("redis is down"))
            #expect(whileDown.elapsed < .seconds(1))  // no connect attempt (a loaded machine is slow)
            // Several failed reconnect attempts report nothing more.
            try await Task.sleep(for: .milliseconds(400))
            #expect(states.recorded == [.down])

            try await server.start()
            #expect(try await eventually(within: .seconds(3)) { client.isAvailable })
            #expect(try await client.command(["PING"]) == .status("PONG"))
            #expect(states.recorded == [.down, .up])
        }
    }

    @Test func shutdownFailsWaitersFinishesRunningCallsAndRefusesLaterOnes() async throws {
        let server = try await RedisTestServer()
        var configuration = try RedisConfiguration(url: server.url())
        configuration.poolSize = 1
        configuration.commandTimeout = .seconds(5)
        let states = StateRecorder()
        let client = try RedisClient(configuration: configuration, onStateChange: states.record)
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        // Long enough to still run when the shutdown comes, even on a loaded CI machine (a
        // 200 ms BLPOP once finished first there, and the PING behind it was answered).
        let running = client.command(["BLPOP", "nothing", "1.5"], on: loop)
        let waiting = client.command(["PING"], on: loop)
        // Let the BLPOP start on its thread: work not started when the pool stops is cancelled.
        try await Task.sleep(for: .milliseconds(100))

        let start = ContinuousClock.now
        try await client.shutdown()
        // It waits for the running BLPOP (at most 1.5 s), not for the command timeout (5 s).
        #expect(ContinuousClock.now - start < .milliseconds(4000))
        #expect(try await running.get() == .null)
        let waiter = await redisFailure { try await waiting.get() }
        #expect(waiter.code == .shutdown)
        let later = await redisFailure { try await client.command(["PING"]) }
        #expect(later.code == .shutdown)
        #expect(!client.isAvailable)
        #expect(client.state == .shutdown)
        try await client.shutdown()
        try client.syncShutdown()
        #expect(states.recorded == [.shutdown])
    }

    @Test func syncShutdownOfAnIdleClientFreesItsConnections() async throws {
        let server = try await RedisTestServer()
        var configuration = try RedisConfiguration(url: server.url())
        configuration.commandTimeout = .seconds(3)
        let client = try RedisClient(configuration: configuration)
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        // Four calls at once open the four connections of the pool (each held 0.5 s, so that none
        // is free again before the last call starts, even on a loaded machine).
        let futures = (0..<4).map { _ in client.command(["BLPOP", "nothing", "0.5"], on: loop) }
        for future in futures {
            #expect(try await future.get() == .null)
        }
        // The client's connections are the ones whose last command was BLPOP (the observer's
        // own, one or more, last ran CLIENT LIST).
        @Sendable func clientConnections(_ observer: RedisClient) async -> Int? {
            guard let list = try? await observer.command(["CLIENT", "LIST"]).string else {
                return nil
            }
            return list.split(separator: "\n").filter { $0.contains("cmd=blpop") }.count
        }
        try await withRedisClient(try RedisConfiguration(url: server.url())) { observer in
            #expect(await clientConnections(observer) == 4)
            try client.syncShutdown()
            let closed = try await eventually(within: .seconds(5)) {
                await clientConnections(observer) == 0
            }
            #expect(closed)
        }
    }
}
