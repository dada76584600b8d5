import Foundation
import NIOHTTP1
import Testing

@testable import SidecarCore

@Suite struct SpendLedgerTests {
    @Test func spendAddsUpPerAppAndSurvivesASaveAndLoad() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("state/spend.json")
        let ledger = SpendLedger(configuration: .init(), file: file, redis: nil)
        ledger.record(app: "billing", model: "gpt-4o", dollars: 0.25)
        ledger.record(app: "billing", model: "small", dollars: 0)
        ledger.record(app: "web", model: "gpt-4o", dollars: 0.5, saved: 0, hit: false)
        ledger.record(app: "web", model: "gpt-4o", dollars: 0, saved: 0.5, hit: true)
        #expect(ledger.spentToday(app: "billing") == 0.25)
        #expect(ledger.spentToday(app: "web") == 0.5)
        #expect(ledger.spentToday(app: "nobody") == 0)
        try ledger.save()
        let restarted = SpendLedger(configuration: .init(), file: file, redis: nil)
        try restarted.load()
        #expect(restarted.spentToday(app: "billing") == 0.25)
        let web = restarted.rows().first { $0.key.app == "web" && $0.key.model == "gpt-4o" }?.totals
        #expect(web == .init(dollars: 0.5, requests: 2, saved: 0.5, hits: 1))
    }

    @Test func aRelativeStateFileIsUnderSystemdsStateDirectory() {
        let config = SpendConfiguration(stateFile: "spend.json")
        #expect(
            SpendLedger.stateFile(config, environment: ["STATE_DIRECTORY": "/var/lib/llm-sidecar"])?.path
                == "/var/lib/llm-sidecar/spend.json"
        )
        #expect(SpendLedger.stateFile(.init(stateFile: "/srv/s.json"), environment: [:])?.path == "/srv/s.json")
        #expect(SpendLedger.stateFile(.init(), environment: [:]) == nil)
        #expect(SpendLedger.dollarText(0.0000975) == "0.0000975")
        #expect(SpendLedger.dollarText(0) == "0")
    }

    @Test func theAppIsTheClientTokensElseTheHeaderThenDefault() {
        let apps = AppAttribution(
            clients: [.init(app: "billing", tokenEnv: "BILLING_TOKEN"), .init(app: "unset", tokenEnv: "NOT_SET")],
            environment: ["BILLING_TOKEN": "sk-billing"]
        )
        let path = "/v1/chat/completions"
        // With client tokens, the token names the app and a header cannot claim another one.
        #expect(
            apps.identify(HTTPHeaders([("Authorization", "Bearer sk-billing"), ("X-Sidecar-App", "web")]), path: path)
                == .app("billing")
        )
        #expect(
            apps.identify(HTTPHeaders([("Authorization", "Bearer sk-other"), ("X-Sidecar-App", "web")]), path: path)
                == .refused(.invalidClientToken)
        )
        // Without them, the header names the app, else `default`.
        let open = AppAttribution(clients: [], environment: [:])
        #expect(open.identify(HTTPHeaders([("X-Sidecar-App", "web")]), path: path) == .app("web"))
        #expect(open.app(HTTPHeaders([("X-Sidecar-App", "bad name")])) == "default")
        #expect(open.app(HTTPHeaders([("X-Sidecar-App", String(repeating: "a", count: 65))])) == "default")
        #expect(open.app(HTTPHeaders()) == "default")
    }
}
