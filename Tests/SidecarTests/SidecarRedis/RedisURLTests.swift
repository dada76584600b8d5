import NIOCore
import Testing

@testable import SidecarRedis

@Suite struct RedisURLTests {
    struct Good: Sendable, CustomTestStringConvertible {
        var text: String
        var endpoint: RedisURL.Endpoint
        var username: String?
        var password: String?
        var database: Int

        var testDescription: String { self.text }
    }

    static let good: [Good] = [
        Good(text: "redis://localhost", endpoint: .tcp(host: "localhost", port: 6379), database: 0),
        Good(text: "redis://10.0.0.7:6380/", endpoint: .tcp(host: "10.0.0.7", port: 6380), database: 0),
        Good(text: "REDIS://cache:1/15", endpoint: .tcp(host: "cache", port: 1), database: 15),
        Good(text: "redis://[::1]:7000/2", endpoint: .tcp(host: "::1", port: 7000), database: 2),
        Good(text: "redis://[fe80::1]", endpoint: .tcp(host: "fe80::1", port: 6379), database: 0),
        Good(
            text: "redis://:s3cr%40t%3A%2F%25@h:6379/1",
            endpoint: .tcp(host: "h", port: 6379),
            password: "s3cr@t:/%",
            database: 1
        ),
        Good(
            text: "redis://sidecar:pw@h/3",
            endpoint: .tcp(host: "h", port: 6379),
            username: "sidecar",
            password: "pw",
            database: 3
        ),
        Good(text: "redis://:raw@at@h", endpoint: .tcp(host: "h", port: 6379), password: "raw@at", database: 0),
        Good(text: "redis://:p%C3%A9@h", endpoint: .tcp(host: "h", port: 6379), password: "p\u{e9}", database: 0),
        Good(text: "unix:///var/run/redis.sock", endpoint: .unixSocket(path: "/var/run/redis.sock"), database: 0),
        Good(text: "unix:///tmp/r%20s.sock?db=4", endpoint: .unixSocket(path: "/tmp/r s.sock"), database: 4),
        Good(
            text: "unix:///tmp/r.sock?db=2&user=app&password=a%26b",
            endpoint: .unixSocket(path: "/tmp/r.sock"),
            username: "app",
            password: "a&b",
            database: 2
        ),
    ]

    @Test(arguments: Self.good)
    func parsesGoodURLs(_ expected: Good) throws {
        let url = try RedisURL(parsing: expected.text)
        #expect(url.endpoint == expected.endpoint)
        #expect(url.username == expected.username)
        #expect(url.password == expected.password)
        #expect(url.database == expected.database)
    }

    static let bad: [(text: String, message: String)] = [
        ("http://localhost", "must start with redis:// or unix://"),
        ("localhost:6379", "must start with redis:// or unix://"),
        ("rediss://h", "TLS (rediss://) is not supported"),
        ("redis://", "the host is empty"),
        ("redis://:6379", "the host is empty"),
        ("redis://h:0", "the port '0' is not a number in 1...65535"),
        ("redis://h:65536", "the port '65536' is not a number in 1...65535"),
        ("redis://h:abc", "the port 'abc' is not a number"),
        ("redis://h:", "the port '' is not a number"),
        ("redis://h/x", "the database 'x' is not a number"),
        ("redis://h/-1", "the database '-1' is not a number"),
        ("redis://h/1?timeout=3", "query parameters are not supported"),
        ("redis://secret@h", "must be ':password' or 'user:password'"),
        ("redis://user:@h", "the password is empty"),
        ("redis://:bad%zzpw@h", "the password has a '%' not followed by two hex digits"),
        ("redis://:bad%ff@h", "the password is not UTF-8"),
        ("redis://[::1", "no closing ']'"),
        ("redis://[::1]x", "expected ':port' after ']'"),
        ("unix://relative.sock", "unix:///absolute/path"),
        ("unix://host/tmp/r.sock", "unix:///absolute/path"),
        ("unix:///", "the socket path names no file"),
        ("unix:///tmp/r.sock?db=two", "the database 'two' is not a number"),
        ("unix:///tmp/r.sock?timeout=1", "unknown query parameter 'timeout'"),
    ]

    @Test(arguments: Self.bad)
    func rejectsBadURLsWithAClearMessage(_ text: String, _ message: String) {
        #expect {
            try RedisURL(parsing: text)
        } throws: { error in
            (error as? RedisConfigurationError)?.message.contains(message) ?? false
        }
    }

    @Test func neverShowsThePassword() throws {
        let url = try RedisURL(parsing: "redis://app:hunter2@h:6380/1")
        #expect(url.description == "redis://app:***@h:6380/1")
        let socket = try RedisURL(parsing: "unix:///tmp/r.sock?password=hunter2")
        #expect(socket.description == "unix:///tmp/r.sock?db=0&password=***")
        do {
            _ = try RedisURL(parsing: "redis://:hunter2@h:99999")
            Issue.record("a port out of range was accepted")
        } catch {
            #expect(!error.message.contains("hunter2"))
            #expect(error.message.contains("***"))
        }
    }

    @Test func configurationDefaultsAndValidation() throws {
        let configuration = try RedisConfiguration(url: "redis://h")
        #expect(configuration.connectTimeout == .milliseconds(250))
        #expect(configuration.commandTimeout == .milliseconds(250))
        #expect(configuration.poolSize == 4)
        #expect(configuration.reconnectBackoff.initial == .milliseconds(100))
        #expect(configuration.reconnectBackoff.maximum == .seconds(5))
        try configuration.validate()

        var broken = configuration
        broken.poolSize = 0
        #expect(throws: RedisConfigurationError("redis pool size must be in 1...256, not 0")) {
            try broken.validate()
        }
        broken = configuration
        broken.commandTimeout = .zero
        #expect(throws: RedisConfigurationError("redis command timeout must be more than 0")) {
            try broken.validate()
        }
        broken = configuration
        broken.maxWaiters = -1
        #expect(throws: RedisConfigurationError.self) {
            try RedisClient(configuration: broken)
        }
    }

    @Test func backoffDoublesUpToItsCapWithJitterBelowTheDelay() {
        let exact = RedisConfiguration.Backoff(jitter: 0)
        let delays = (0..<8).map { exact.delay(attempt: $0).nanoseconds / 1_000_000 }
        #expect(delays == [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000])
        #expect(exact.delay(attempt: 10_000) == .seconds(5))

        let jittered = RedisConfiguration.Backoff(jitter: 0.5)
        let samples = (0..<200).map { _ in jittered.delay(attempt: 1).nanoseconds }
        #expect(samples.allSatisfy { (100_000_000...200_000_000).contains($0) })
        #expect(Set(samples).count > 1)
    }
}
