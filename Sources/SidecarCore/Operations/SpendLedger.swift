import Foundation
import NIOCore
import SidecarPolicy
import SidecarRedis
import Synchronization

/// What each app spent per UTC day, per model (and what the cache saved it), with the daily
/// budgets checked against it.
///
/// Every answered request adds to it (one lock, a dictionary update). A service saves it to
/// the state file every few seconds and at shutdown, so spend survives a restart; with Redis,
/// the same service adds this host's new spend to the fleet's totals and reads them back, so a
/// budget holds across every host (within a few seconds).
public final class SpendLedger: Sendable {
    /// One app's use of one model on one day.
    struct Key: Hashable, Sendable, Codable {
        var day: Int
        var app: String
        var model: String
    }

    struct Totals: Sendable, Codable, Equatable {
        var dollars = 0.0
        var requests = 0
        var saved = 0.0
        var hits = 0

        mutating func add(_ other: Totals) {
            self.dollars += other.dollars
            self.requests += other.requests
            self.saved += other.saved
            self.hits += other.hits
        }
    }

    private struct State {
        var totals: [Key: Totals] = [:]
        /// Added since the last save.
        var dirty = false
        /// Added since the last flush to Redis.
        var unsent: [Key: Totals] = [:]
        /// The fleet's dollars today per app, as Redis last said (this host's unsent spend is
        /// added on top when read).
        var fleetToday: [String: Double] = [:]
        var fleetDay = -1
        /// This host's dollars today per app (what the request path reads), and the day it is.
        var localToday: [String: Double] = [:]
        var unsentToday: [String: Double] = [:]
        var localDay = -1

        mutating func turn(to day: Int) {
            guard day != self.localDay else { return }
            self.localDay = day
            self.localToday = [:]
            self.unsentToday = [:]
        }
    }

    private let state = Mutex(State())
    let budgets: [String: Double]
    let daysKept: Int
    let file: URL?
    let redis: RedisClient?

    init(configuration: SpendConfiguration, file: URL?, redis: RedisClient?) {
        self.budgets = configuration.dailyBudgets
        self.daysKept = configuration.daysKept
        self.file = file
        self.redis = redis
    }

    /// The state file's location: relative paths are under `$STATE_DIRECTORY` (systemd) when set.
    static func stateFile(_ configuration: SpendConfiguration, environment: [String: String]) -> URL? {
        guard !configuration.stateFile.isEmpty else { return nil }
        if configuration.stateFile.hasPrefix("/") { return URL(fileURLWithPath: configuration.stateFile) }
        let base = environment["STATE_DIRECTORY"].flatMap { $0.split(separator: ":").first.map(String.init) } ?? "."
        return URL(fileURLWithPath: base).appendingPathComponent(configuration.stateFile)
    }

    /// Today as a UTC day number.
    static func today(_ now: Date = Date()) -> Int { Int(now.timeIntervalSince1970 / 86_400) }

    /// Dollars as `X-Query-Cost` prints them: a plain decimal, at most 10 places.
    static func dollarText(_ dollars: Double) -> String {
        guard dollars.isFinite, dollars > 0 else { return "0" }
        return CostCalculator.headerValue(picodollars: Int64(min(dollars, 9e6) * 1e12))
    }

    static func dayText(_ day: Int) -> String {
        Self.dayFormatter().string(from: Date(timeIntervalSince1970: Double(day) * 86_400))
    }

    /// `yyyy-MM-dd` in UTC: how days are written in the state file, the stats and Redis keys.
    private static func dayFormatter() -> DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter
    }

    // MARK: The request path

    /// An answered request's cost (or, for a cache hit, what it saved).
    func record(app: String, model: String, dollars: Double, saved: Double = 0, hit: Bool = false) {
        let key = Key(day: Self.today(), app: app, model: model)
        let added = Totals(dollars: dollars, requests: 1, saved: saved, hits: hit ? 1 : 0)
        self.state.withLock { state in
            state.totals[key, default: Totals()].add(added)
            state.dirty = true
            state.turn(to: key.day)
            state.localToday[app, default: 0] += dollars
            if self.redis != nil {
                state.unsent[key, default: Totals()].add(added)
                state.unsentToday[app, default: 0] += dollars
            }
        }
    }

    /// The app's spend today in US dollars: the fleet's when Redis is shared, else this host's.
    func spentToday(app: String) -> Double {
        let today = Self.today()
        return self.state.withLock { state in
            state.turn(to: today)
            let local = state.localToday[app] ?? 0
            guard self.redis != nil, state.fleetDay == today else { return local }
            return max(local, (state.fleetToday[app] ?? 0) + (state.unsentToday[app] ?? 0))
        }
    }

    /// The app's budget when today's spend has reached it.
    func exhaustedBudget(app: String) -> (budget: Double, spent: Double)? {
        guard let budget = self.budgets[app] else { return nil }
        let spent = self.spentToday(app: app)
        return spent >= budget ? (budget, spent) : nil
    }

    // MARK: Reports

    /// Totals per day, app and model (the stats page), oldest first.
    func rows() -> [(key: Key, totals: Totals)] {
        let totals = self.state.withLock { $0.totals }
        return totals.map { ($0.key, $0.value) }.sorted {
            ($0.key.day, $0.key.app, $0.key.model) < ($1.key.day, $1.key.app, $1.key.model)
        }
    }

    // MARK: Persistence

    private struct FileContents: Codable {
        var version = 1
        var rows: [Row]

        struct Row: Codable {
            var day: String
            var app: String
            var model: String
            var dollars: Double
            var requests: Int
            var saved: Double
            var hits: Int
        }
    }

    /// Reads the state file (a missing file is an empty ledger).
    func load() throws {
        guard let file = self.file, FileManager.default.fileExists(atPath: file.path) else { return }
        let contents = try JSONDecoder().decode(FileContents.self, from: Data(contentsOf: file))
        let formatter = Self.dayFormatter()
        self.state.withLock { state in
            for row in contents.rows {
                guard let date = formatter.date(from: row.day) else { continue }
                let key = Key(day: Self.today(date), app: row.app, model: row.model)
                state.totals[key, default: Totals()].add(
                    Totals(dollars: row.dollars, requests: row.requests, saved: row.saved, hits: row.hits)
                )
                state.turn(to: Self.today())
                if key.day == state.localDay { state.localToday[key.app, default: 0] += row.dollars }
            }
        }
    }

    /// Writes the state file when something changed (atomically: a new file renamed over it).
    func save() throws {
        guard let file = self.file else { return }
        let oldest = Self.today() - self.daysKept + 1
        let rows = self.state.withLock { state -> [(Key, Totals)]? in
            guard state.dirty else { return nil }
            state.dirty = false
            state.totals = state.totals.filter { $0.key.day >= oldest }
            return state.totals.map { ($0.key, $0.value) }
        }
        guard let rows else { return }
        let contents = FileContents(
            rows: rows.sorted { ($0.0.day, $0.0.app, $0.0.model) < ($1.0.day, $1.0.app, $1.0.model) }.map {
                .init(
                    day: Self.dayText($0.0.day),
                    app: $0.0.app,
                    model: $0.0.model,
                    dollars: $0.1.dollars,
                    requests: $0.1.requests,
                    saved: $0.1.saved,
                    hits: $0.1.hits
                )
            }
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileManager.default.createDirectory(
            at: file.deletingLastPathComponent(),
            withIntermediateDirectories: true
        )
        try encoder.encode(contents).write(to: file, options: .atomic)
    }

    // MARK: The fleet (Redis)

    static func fleetKey(_ day: Int) -> String { "llmsc:1:{spend}:\(Self.dayText(day))" }

    /// Adds this host's spend since the last flush to the fleet's per-day hash and reads today's
    /// totals back. Unsent spend stays queued while Redis is down.
    func flushToFleet() async {
        guard let redis = self.redis, redis.isAvailable else { return }
        let unsent = self.state.withLock { state -> [Key: Totals] in
            let unsent = state.unsent
            state.unsent = [:]
            state.unsentToday = [:]
            return unsent
        }
        var commands: [[String]] = []
        for (key, totals) in unsent where totals.dollars != 0 {
            commands.append(["HINCRBYFLOAT", Self.fleetKey(key.day), key.app, String(totals.dollars)])
            commands.append(["EXPIRE", Self.fleetKey(key.day), String(self.daysKept * 86_400)])
        }
        let today = Self.today()
        commands.append(["HGETALL", Self.fleetKey(today)])
        do {
            let replies = try await redis.pipeline(commands.map { $0.map { Array($0.utf8) } })
            let fleet = (replies.last?.fieldsAndValues ?? [:]).mapValues { Double($0) ?? 0 }
            self.state.withLock { state in
                state.fleetToday = fleet
                state.fleetDay = today
            }
        } catch {
            // Not sent: queue it again for the next flush.
            self.state.withLock { state in
                for (key, totals) in unsent {
                    state.unsent[key, default: Totals()].add(totals)
                    if key.day == state.localDay { state.unsentToday[key.app, default: 0] += totals.dollars }
                }
            }
        }
    }
}
