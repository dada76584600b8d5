import Foundation
import Testing

@testable import SidecarCore
@testable import SidecarHTTP

/// `ca_file` and `api_key_file`: read once at load, and a file that cannot be used fails the
/// load naming the file, line and key.
@Suite struct UpstreamFilesConfigurationTests {
    static func toml(_ upstreamKeys: String, baseURL: String = "https://127.0.0.1:1/v1") -> String {
        """
        [[upstreams]]
        name = "a"
        base_url = "\(baseURL)"
        \(upstreamKeys)

        [[models]]
        name = "m"
        upstream = "a"

        [routing]
        tiers = [ { max_score = 1.5, model = "m" } ]
        """
    }

    static func message(_ toml: String, environment: [String: String] = [:]) -> String {
        do {
            _ = try SidecarConfiguration(toml: toml, file: "bad.conf", environment: environment)
            return "no error"
        } catch {
            return error.description
        }
    }

    /// A fresh temporary directory, removed after `body`.
    static func withDirectory<T>(_ body: (URL) throws -> T) throws -> T {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("files-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        return try body(directory)
    }

    // MARK: ca_file

    @Test func aCAFileIsLoadedIntoTheUpstreamsEndpoint() throws {
        let certificate = try TestCertificateFiles(subjectAltName: "DNS:localhost")
        defer { certificate.remove() }
        let config = try SidecarConfiguration(
            toml: Self.toml("ca_file = \"\(certificate.certificatePath)\""),
            file: "ok.conf"
        )
        let trust = try #require(config.upstreams[0].trust)
        #expect(config.upstreams[0].caFile == certificate.certificatePath)
        let directory = UpstreamDirectory(configuration: config, environment: [:])
        #expect(directory.entry("a")?.endpoint?.trust == trust)
        // The same bundle loaded again is the same trust (a reload keeps the connections); another is not.
        let again = try SidecarConfiguration(
            toml: Self.toml("ca_file = \"\(certificate.certificatePath)\""),
            file: "ok.conf"
        )
        #expect(again.upstreams[0].trust == trust)
        let other = try TestCertificateFiles(subjectAltName: "DNS:localhost")
        defer { other.remove() }
        let otherConfig = try SidecarConfiguration(
            toml: Self.toml("ca_file = \"\(other.certificatePath)\""),
            file: "ok.conf"
        )
        #expect(otherConfig.upstreams[0].trust != trust)
        // Without ca_file: the system's roots.
        let plain = try SidecarConfiguration(toml: Self.toml(""), file: "ok.conf")
        #expect(plain.upstreams[0].trust == nil)
        #expect(UpstreamDirectory(configuration: plain, environment: [:]).entry("a")?.endpoint?.trust == nil)
    }

    @Test func anUnreadableOrNonPEMCAFileFailsTheLoadNamingFileLineAndKey() throws {
        try Self.withDirectory { directory in
            let missing = directory.appendingPathComponent("missing.pem").path
            let message = Self.message(Self.toml("ca_file = \"\(missing)\""))
            #expect(message.hasPrefix("bad.conf:4: upstreams[0].ca_file: cannot read \"\(missing)\""), "\(message)")

            let garbage = directory.appendingPathComponent("garbage.pem")
            try Data("not a certificate\n".utf8).write(to: garbage)
            let garbageMessage = Self.message(Self.toml("ca_file = \"\(garbage.path)\""))
            #expect(
                garbageMessage.hasPrefix("bad.conf:4: upstreams[0].ca_file: \"\(garbage.path)\" "),
                "\(garbageMessage)"
            )
            #expect(garbageMessage.contains("PEM"), "\(garbageMessage)")

            let broken = directory.appendingPathComponent("broken.pem")
            try Data("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".utf8).write(to: broken)
            #expect(Self.message(Self.toml("ca_file = \"\(broken.path)\"")).contains("upstreams[0].ca_file"))

            #expect(Self.message(Self.toml("ca_file = \"\(directory.path)\"")).contains("upstreams[0].ca_file"))
        }
    }

    @Test func aCAFileOnAPlainHTTPUpstreamIsAnError() throws {
        let certificate = try TestCertificateFiles(subjectAltName: "DNS:localhost")
        defer { certificate.remove() }
        let message = Self.message(
            Self.toml("ca_file = \"\(certificate.certificatePath)\"", baseURL: "http://127.0.0.1:1/v1")
        )
        #expect(message == "bad.conf:4: upstreams[0].ca_file: only an https:// upstream has certificates to verify")
    }

    // MARK: api_key_file

    @Test func aKeyFileIsReadOnceWithoutItsTrailingNewline() throws {
        try Self.withDirectory { directory in
            let file = directory.appendingPathComponent("key")
            try Data("sk-from-file-0123456789\r\n".utf8).write(to: file)
            let config = try SidecarConfiguration(toml: Self.toml("api_key_file = \"\(file.path)\""), file: "ok.conf")
            // Read at load: the file can go away afterwards.
            try FileManager.default.removeItem(at: file)
            let entry = try #require(UpstreamDirectory(configuration: config, environment: [:]).entry("a"))
            #expect(entry.authorization == "Bearer sk-from-file-0123456789")
            #expect(entry.missingKeyVariable == nil)
        }
    }

    @Test func aRelativeKeyFileIsUnderTheCredentialsDirectory() throws {
        try Self.withDirectory { directory in
            try Data("sk-credential\n".utf8).write(to: directory.appendingPathComponent("openai-api-key"))
            let config = try SidecarConfiguration(
                toml: Self.toml("api_key_file = \"openai-api-key\""),
                file: "ok.conf",
                environment: ["CREDENTIALS_DIRECTORY": directory.path]
            )
            let entry = UpstreamDirectory(configuration: config, environment: [:]).entry("a")
            #expect(entry?.authorization == "Bearer sk-credential")
        }
    }

    @Test func aKeyFileThatCannotBeUsedFailsTheLoadWithoutQuotingIt() throws {
        try Self.withDirectory { directory in
            let missing = Self.message(
                Self.toml("api_key_file = \"nope\""),
                environment: ["CREDENTIALS_DIRECTORY": directory.path]
            )
            let expected = directory.appendingPathComponent("nope").path
            #expect(
                missing.hasPrefix("bad.conf:4: upstreams[0].api_key_file: cannot read \"\(expected)\""),
                "\(missing)"
            )

            let empty = directory.appendingPathComponent("empty")
            try Data("\n".utf8).write(to: empty)
            #expect(
                Self.message(Self.toml("api_key_file = \"\(empty.path)\""))
                    == "bad.conf:4: upstreams[0].api_key_file: \"\(empty.path)\" is empty"
            )

            let twoLines = directory.appendingPathComponent("two-lines")
            try Data("sk-secret-line-one\nsk-secret-line-two\n".utf8).write(to: twoLines)
            let message = Self.message(Self.toml("api_key_file = \"\(twoLines.path)\""))
            #expect(message.contains("upstreams[0].api_key_file"))
            #expect(!message.contains("sk-secret"), "\(message)")

            let both = Self.message(Self.toml("api_key_env = \"KEY\"\napi_key_file = \"\(twoLines.path)\""))
            #expect(both == "bad.conf:5: upstreams[0].api_key_file: give either api_key_env or api_key_file, not both")
        }
    }

    @Test func aKeyReadFromAFileNeverPrints() throws {
        try Self.withDirectory { directory in
            let file = directory.appendingPathComponent("key")
            try Data("sk-never-printed-42".utf8).write(to: file)
            let config = try SidecarConfiguration(toml: Self.toml("api_key_file = \"\(file.path)\""), file: "ok.conf")
            let key = try #require(config.upstreams[0].apiKeyFromFile)
            var dumped = ""
            dump(config, to: &dumped)
            for text in ["\(config)", String(describing: config), String(reflecting: config), "\(key)", dumped] {
                #expect(!text.contains("sk-never-printed"), "\(text)")
            }
        }
    }

    // MARK: base_url

    @Test func credentialsInTheBaseURLAreAnError() {
        let message = Self.message(Self.toml("", baseURL: "https://user:sk-in-url@api.example.com/v1"))
        #expect(message.hasPrefix("bad.conf:3: upstreams[0].base_url: must not carry a user or password"), "\(message)")
        #expect(!message.contains("sk-in-url"))
    }

    @Test func plainHTTPBeyondLoopbackIsFlagged() throws {
        let cases: [(String, Bool)] = [
            ("http://127.0.0.1:11434/v1", false), ("http://127.9.8.7/v1", false), ("http://localhost:8000/v1", false),
            ("http://[::1]:8000/v1", false), ("http://[::ffff:127.0.0.1]:8000/v1", false),
            ("https://10.0.0.5/v1", false), ("https://api.openai.com/v1", false),
            ("http://10.0.0.5:8000/v1", true), ("http://128.0.0.1/v1", true), ("http://gpu-box.lan:8000/v1", true),
            ("http://[::2]:8000/v1", true), ("http://[fe80::1]:8000/v1", true),
            ("http://localhost.evil.example/v1", true),
            ("http://127.0.0.1.nip.io/v1", true),
        ]
        for (baseURL, flagged) in cases {
            let config = try SidecarConfiguration(toml: Self.toml("", baseURL: baseURL), file: "ok.conf")
            let entry = UpstreamDirectory(configuration: config, environment: [:]).entry("a")
            #expect(entry?.isPlainHTTPBeyondLoopback == flagged, "\(baseURL)")
        }
    }
}
