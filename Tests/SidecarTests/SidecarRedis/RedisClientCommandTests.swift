import NIOCore
import NIOPosix
import Testing

@testable import SidecarRedis

/// Calls against a real `redis-server` that stays up.
@Suite(.timeLimit(.minutes(1)))
struct RedisClientCommandTests {
    @Test func setWithExpiryGetAndReplyKinds() async throws {
        let server = try await RedisTestServer()
        try await withRedisClient(try RedisConfiguration(url: server.url())) { client in
            #expect(try await client.command(["SET", "greeting", "hello", "EX", "30"]) == .status("OK"))
            #expect(try await client.command(["GET", "greeting"]) == .bulk("hello"))
            let ttl = try #require(try await client.command(["TTL", "greeting"]).integer)
            #expect((1...30).contains(ttl))
            #expect(try await client.command(["GET", "missing"]) == .null)
            #expect(try await client.command(["INCR", "counter"]) == .integer(1))
            #expect(try await client.command(["MGET", "greeting", "missing"]) == .array([.bulk("hello"), .null]))
            let wrongType = try await client.command(["INCR", "greeting"])
            #expect(wrongType.errorMessage?.hasPrefix("ERR") == true)
            // An error reply leaves the connection usable.
            #expect(try await client.command(["PING"]) == .status("PONG"))
            #expect(client.isAvailable)
        }
    }

    @Test func valuesAreBinarySafe() async throws {
        let server = try await RedisTestServer()
        try await withRedisClient(try RedisConfiguration(url: server.url())) { client in
            let value: [UInt8] = [0, 1, 0, 255, 13, 10, 0x24, 0, 0x2A]
            let key: [UInt8] = Array("k\u{0}ey".utf8)
            #expect(try await client.command([Array("SET".utf8), key, value]) == .status("OK"))
            let reply = try await client.command([Array("GET".utf8), key])
            #expect(reply.bytes == value)
            #expect(try await client.command([Array("STRLEN".utf8), key]) == .integer(Int64(value.count)))
            #expect(try await client.command([Array("SET".utf8), Array("empty".utf8), []]) == .status("OK"))
            #expect(try await client.command(["GET", "empty"]).bytes == [])
            #expect(try await client.command(["GET", "k"]) == .null)
        }
    }

    @Test func passwordAndDatabaseAreSentOnEachNewConnection() async throws {
        let password = "p@ss:w/rd%"
        let server = try await RedisTestServer(password: password)
        try await withRedisClient(try RedisConfiguration(url: server.url(database: 3))) { client in
            let set = try await client.command(["SET", "where", "db3"])
            #expect(set == .status("OK"))
        }
        try await withRedisClient(try RedisConfiguration(url: server.url())) { client in
            let inDatabase0 = try await client.command(["GET", "where"])
            #expect(inDatabase0 == .null)
        }
        let withUser = try RedisConfiguration(url: "redis://default:p%40ss%3Aw%2Frd%25@127.0.0.1:\(server.port)/3")
        try await withRedisClient(withUser) { client in
            // More calls than connections, so that several new connections log in and select.
            let replies = try await withThrowingTaskGroup(of: RedisReply.self) { group in
                for _ in 0..<12 {
                    group.addTask { try await client.command(["GET", "where"]) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(replies == Array(repeating: .bulk("db3"), count: 12))
        }
        let states = StateRecorder()
        try await withRedisClient(try RedisConfiguration(url: server.url(password: "wrong")), states: states) {
            client in
            do {
                _ = try await client.command(["GET", "where"])
                Issue.record("a wrong password was accepted")
            } catch let error as RedisError {
                #expect(error.code == .unavailable)
                #expect(error.message.contains("AUTH"))
                #expect(!error.message.contains("wrong"))
            }
            #expect(!client.isAvailable)
            #expect(states.recorded == [.down])
        }
    }

    @Test func manyMoreConcurrentCallsThanConnectionsAllSucceedOnTheirOwnEventLoop() async throws {
        let server = try await RedisTestServer()
        var configuration = try RedisConfiguration(url: server.url())
        configuration.maxWaiters = 400
        configuration.commandTimeout = .seconds(2)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 3)
        try await withRedisClient(configuration) { client in
            let futures = (0..<300).map { index -> EventLoopFuture<Bool> in
                let loop = group.any()
                return client.command(["INCR", "hits"], on: loop).map { _ in loop.inEventLoop }
            }
            let onCallersLoop = try await EventLoopFuture.whenAllSucceed(futures, on: group.any()).get()
            #expect(onCallersLoop.allSatisfy { $0 })
            #expect(try await client.command(["GET", "hits"]) == .bulk("300"))
            #expect(try await client.command(["CLIENT", "LIST"]).string?.split(separator: "\n").count ?? 0 <= 4)
        }
        try await group.shutdownGracefully()
    }

    @Test func callsOneAfterAnotherReuseOneConnection() async throws {
        let server = try await RedisTestServer()
        try await withRedisClient(try RedisConfiguration(url: server.url())) { client in
            // The connection is back in the pool before each caller hears its reply, so the next
            // call never finds the pool empty and opens a second one.
            for index in 0..<200 {
                #expect(try await client.command(["SET", "k\(index)", "v"]) == .status("OK"))
            }
            let list = try #require(try await client.command(["CLIENT", "LIST"]).string)
            #expect(list.split(separator: "\n").count == 1)
        }
    }

    @Test func pipelineSendsSeveralCommandsInOneRoundTrip() async throws {
        let server = try await RedisTestServer()
        try await withRedisClient(try RedisConfiguration(url: server.url())) { client in
            let replies = try await client.pipeline([
                [Array("SET".utf8), Array("last".utf8), [0, 1, 2]],
                ["XADD", "events", "*", "kind", "request"].map { Array($0.utf8) },
                ["NOSUCHCOMMAND"].map { Array($0.utf8) },
                ["GET", "last"].map { Array($0.utf8) },
            ])
            try #require(replies.count == 4)
            #expect(replies[0] == .status("OK"))
            #expect(replies[1].string?.contains("-") == true)
            #expect(replies[2].errorMessage?.contains("unknown command") == true)
            #expect(replies[3].bytes == [0, 1, 2])
            #expect(try await client.command(["XLEN", "events"]) == .integer(1))
            let empty = await redisFailure { try await client.pipeline([]) }
            #expect(empty.code == .invalidCommand)
            let nameless = await redisFailure { try await client.command([] as [String]) }
            #expect(nameless.code == .invalidCommand)
        }
    }

    @Test func callsBeyondMaxWaitersFailAtOnceAndWaitersGetTheConnectionInOrder() async throws {
        let server = try await RedisTestServer()
        var configuration = try RedisConfiguration(url: server.url())
        configuration.poolSize = 1
        configuration.maxWaiters = 2
        configuration.commandTimeout = .seconds(6)
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        try await withRedisClient(configuration) { client in
            // BLPOP holds the only connection for 3 s, within the command timeout.
            let holder = client.command(["BLPOP", "nothing", "3"], on: loop)
            let first = client.command(["RPUSH", "order", "first"], on: loop)
            let second = client.command(["RPUSH", "order", "second"], on: loop)
            let rejected = await redisFailure { try await client.command(["PING"], on: loop).get() }
            #expect(rejected.code == .tooManyWaiters)
            // At once: a call that waited in line would take 3 s (the margin is for a loaded CI
            // machine, where even an immediate failure once took 0.7 s to be heard).
            #expect(rejected.elapsed < .milliseconds(1500))
            let replies = try await [holder.get(), first.get(), second.get()]
            #expect(replies == [.null, .integer(1), .integer(2)])
            #expect(client.isAvailable)
        }
    }

    @Test func aCallWaitingInLineFailsAfterTheCommandTimeout() async throws {
        let server = try await RedisTestServer()
        var configuration = try RedisConfiguration(url: server.url())
        configuration.poolSize = 1
        configuration.commandTimeout = .milliseconds(300)
        let states = StateRecorder()
        try await withRedisClient(configuration, states: states) { client in
            // Two 200 ms reads in one pipeline: each read is within the timeout, the whole is not.
            let holder = client.pipeline(
                [["BLPOP", "a", "0.2"], ["BLPOP", "b", "0.2"]].map { $0.map { Array($0.utf8) } },
                on: MultiThreadedEventLoopGroup.singleton.any()
            )
            let waiting = await redisFailure { try await client.command(["PING"]) }
            #expect(waiting.code == .timeout)
            #expect(waiting.elapsed >= .milliseconds(250) && waiting.elapsed < .seconds(3))
            let held = try await holder.get()
            #expect(held == [.null, .null])
            #expect(try await client.command(["PING"]) == .status("PONG"))
            #expect(states.recorded.isEmpty)
        }
    }
}
