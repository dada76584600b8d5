/// `[[clients]]`: an app and the environment variable holding the token it sends as its bearer.
/// A request carrying that token is attributed to the app.
public struct ClientConfiguration: Sendable, Equatable {
    public var app: String
    public var tokenEnv: String

    public init(app: String, tokenEnv: String) {
        self.app = app
        self.tokenEnv = tokenEnv
    }
}

/// `[spend]`: what each app spent per day, kept across restarts, and daily budgets.
public struct SpendConfiguration: Sendable, Equatable {
    /// The state file (JSON); a relative path is under `$STATE_DIRECTORY` when systemd sets it.
    /// Empty: kept in memory only.
    public var stateFile: String
    /// US dollars per app per UTC day; the request after an app's budget is spent gets 429.
    public var dailyBudgets: [String: Double]
    /// Days of history kept (the stats and the state file).
    public var daysKept: Int

    public init(stateFile: String = "", dailyBudgets: [String: Double] = [:], daysKept: Int = 35) {
        self.stateFile = stateFile
        self.dailyBudgets = dailyBudgets
        self.daysKept = daysKept
    }
}
