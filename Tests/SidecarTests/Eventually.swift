/// Polls `condition` every 10 ms until it holds or `limit` passes; whether it held.
func eventually(within limit: Duration, _ condition: () async -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if await condition() {
            return true
        }
        try await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
}
