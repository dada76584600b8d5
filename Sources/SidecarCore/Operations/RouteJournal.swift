import Foundation
import NIOCore
import SidecarPolicy
import SidecarRedis
import Synchronization

/// The routing decisions of recent requests, by request id, so that `POST /sidecar/feedback`
/// can store a rating with the decision it rates; and the ratings summed by tier and model.
///
/// In memory, bounded to the most recent `capacity` decisions (a ring: one insert and at most
/// one eviction per routed request). With Redis configured, each rating is also written there
/// with its decision, and the report sums the whole fleet's ratings.
final class RouteJournal: Sendable {
    struct Decision: Sendable, Equatable {
        var model: String
        var tier: Int?
        var score: Double
        var router: String
        var app: String
    }

    /// One row of the report: the ratings of the answers one tier's model gave.
    struct Row: Sendable, Equatable, Codable {
        var tier: Int?
        var model: String
        var ratings: Int
        var meanRating: Double

        enum CodingKeys: String, CodingKey {
            case tier, model, ratings
            case meanRating = "mean_rating"
        }
    }

    enum FeedbackError: Error, Equatable {
        /// No routed request with this id among the recent decisions.
        case unknownRequest
    }

    private struct State {
        var order: [Key?]
        var next = 0
        var decisions: [Key: Decision] = [:]
        var ratings: [Key: Double] = [:]
    }

    /// A request id as a key. One of up to 32 bytes (the sidecar's own are 32 hex digits) is
    /// packed into the key itself: the journal keeps tens of thousands, and a string kept per
    /// request held the allocator back from reusing freed memory on the request path.
    struct Key: Hashable, Sendable {
        private var packed = SIMD4<UInt64>.zero
        private var count = 0
        private var long: String?

        init(_ id: String) {
            self.count = id.utf8.count
            guard self.count <= 32 else {
                self.long = id
                return
            }
            for (index, byte) in id.utf8.enumerated() {
                self.packed[index / 8] |= UInt64(byte) << UInt64(index % 8 * 8)
            }
        }

        /// Which of `count` parts keeps this id: the same for every thread, and spread evenly.
        func part(of count: Int) -> Int {
            let mixed: UInt64
            if let long = self.long {
                mixed = UInt64(truncatingIfNeeded: long.hashValue)
            } else {
                let folded =
                    self.packed[0] ^ self.packed[1] &* 0x9E37_79B9_7F4A_7C15 ^ self.packed[2] &* 0xC2B2_AE3D_27D4_EB4F
                    ^ self.packed[3] &* 0x1656_67B1_9E37_79F9
                mixed = folded &* 0xBF58_476D_1CE4_E5B9
            }
            return Int(truncatingIfNeeded: (mixed >> 32) % UInt64(count))
        }
    }

    private final class Part: Sendable {
        let state: Mutex<State>

        init(slots: Int) {
            self.state = Mutex(State(order: Array(repeating: nil, count: slots)))
        }
    }

    /// The decisions in parts by request id, each a ring (one insert and at most one eviction
    /// per routed request), so the event loops rarely wait on each other. Parts are chosen by
    /// id, not by thread: every part fills, and together they keep about `capacity` decisions.
    private let parts: [Part]
    /// Ratings by "tier\tmodel": sum and count.
    private let sums = Mutex<[String: (sum: Double, count: Int)]>([:])
    private let redis: RedisClient?
    static let sumsKey = "llmsc:1:{fb}:sum"
    static let countsKey = "llmsc:1:{fb}:count"
    static let recordPrefix = "llmsc:1:fb:"
    /// How long a rating's record stays in Redis.
    static let recordSeconds = 30 * 86_400

    init(capacity: Int, redis: RedisClient? = nil) {
        let count = capacity >= 1_024 ? 8 : 1
        let each = max(1, (capacity + count - 1) / count)
        self.parts = (0..<count).map { _ in Part(slots: each) }
        self.redis = redis
    }

    func remember(_ requestID: String, _ decision: Decision) {
        let requestID = Key(requestID)
        self.part(requestID).state.withLock { state in
            if let evicted = state.order[state.next] {
                state.decisions[evicted] = nil
                state.ratings[evicted] = nil
            }
            state.order[state.next] = requestID
            state.next = (state.next + 1) % state.order.count
            state.decisions[requestID] = decision
        }
    }

    func decision(_ requestID: String) -> Decision? {
        let requestID = Key(requestID)
        return self.part(requestID).state.withLock { $0.decisions[requestID] }
    }

    private func part(_ key: Key) -> Part {
        self.parts[key.part(of: self.parts.count)]
    }

    /// Stores `rating` (0 bad ... 1 good) with the request's decision; a second rating of the
    /// same request replaces the first.
    func rate(_ requestID: String, rating: Double) async throws(FeedbackError) -> Decision {
        let key = Key(requestID)
        let rated: (decision: Decision, previous: Double?)? = self.part(key).state.withLock { state in
            guard let decision = state.decisions[key] else { return nil }
            defer { state.ratings[key] = rating }
            return (decision, state.ratings[key])
        }
        if let (decision, previous) = rated {
            self.sums.withLock { sums in
                let key = Self.rowKey(decision)
                var row = sums[key] ?? (0, 0)
                row.sum += rating - (previous ?? 0)
                if previous == nil { row.count += 1 }
                sums[key] = row
            }
        }
        guard let (decision, previous) = rated else { throw .unknownRequest }
        if let redis = self.redis, redis.isAvailable {
            let key = Self.rowKey(decision)
            let record: [String] = [
                "HSET", Self.recordPrefix + requestID, "model", decision.model, "tier",
                decision.tier.map(String.init) ?? "", "score", String(decision.score), "router", decision.router,
                "app", decision.app, "rating", String(rating), "at", String(Int(Date().timeIntervalSince1970)),
            ]
            var commands: [[String]] = [
                record,
                ["EXPIRE", Self.recordPrefix + requestID, String(Self.recordSeconds)],
                ["HINCRBYFLOAT", Self.sumsKey, key, String(rating - (previous ?? 0))],
            ]
            if previous == nil { commands.append(["HINCRBY", Self.countsKey, key, "1"]) }
            _ = try? await redis.pipeline(commands.map { $0.map { Array($0.utf8) } })
        }
        return decision
    }

    /// The ratings by tier and model: the fleet's from Redis when it answers, else this host's.
    func report() async -> (rows: [Row], source: String) {
        if let redis = self.redis, redis.isAvailable,
            let replies = try? await redis.pipeline([
                ["HGETALL", Self.sumsKey].map { Array($0.utf8) }, ["HGETALL", Self.countsKey].map { Array($0.utf8) },
            ]), replies.count == 2
        {
            let sums = replies[0].fieldsAndValues
            let counts = replies[1].fieldsAndValues
            let rows = counts.compactMap { key, count -> Row? in
                guard let count = Int(count), count > 0 else { return nil }
                let sum = sums[key].flatMap(Double.init) ?? 0
                return Self.row(key, sum: sum, count: count)
            }
            return (rows.sorted(by: Self.ordered), "redis")
        }
        let sums = self.sums.withLock { $0 }
        let rows = sums.compactMap { key, row in Self.row(key, sum: row.sum, count: row.count) }
        return (rows.sorted(by: Self.ordered), "local")
    }

    static func rowKey(_ decision: Decision) -> String {
        "\(decision.tier.map(String.init) ?? "-")\t\(decision.model)"
    }

    private static func row(_ key: String, sum: Double, count: Int) -> Row? {
        let parts = key.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, count > 0 else { return nil }
        return Row(tier: Int(parts[0]), model: String(parts[1]), ratings: count, meanRating: sum / Double(count))
    }

    private static func ordered(_ lhs: Row, _ rhs: Row) -> Bool {
        (lhs.tier ?? Int.max, lhs.model) < (rhs.tier ?? Int.max, rhs.model)
    }
}
