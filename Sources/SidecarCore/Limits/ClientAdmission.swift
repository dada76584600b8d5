/// What outlives a reload of the `[limits]`: who holds a slot or waits for one, and what each
/// app used of its rates.
final class ClientAdmission: Sendable {
    let gate: AdmissionGate
    let rates: AppRateLimiter

    init(_ limits: LimitsConfiguration) {
        self.gate = AdmissionGate(maxInFlight: limits.maxInFlight, maxQueued: limits.maxQueued)
        self.rates = AppRateLimiter(limits: limits)
    }

    /// Takes a reloaded configuration's limits.
    func update(_ limits: LimitsConfiguration) {
        self.gate.update(maxInFlight: limits.maxInFlight, maxQueued: limits.maxQueued)
        self.rates.update(limits)
    }

    /// The prompt tokens a request is charged on arrival, before its usage is known: about four
    /// bytes of JSON body per token.
    static func estimatedTokens(bodyBytes: Int) -> Int { bodyBytes / 4 }
}
