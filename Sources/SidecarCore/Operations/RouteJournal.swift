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

    /// One part: a ring of ids and their decisions, found by id through a ``DigestTable``
    /// (no `Dictionary` of tens of thousands of ids and strings on the request path); ratings
    /// by ring slot, forgotten with their decision.
    private struct State {
        var ids: [Key?]
        var decisions: [Decision?]
        var next = 0
        var table: DigestTable
        var ratings: [Int: Double] = [:]

        init(slots: Int) {
            self.ids = Array(repeating: nil, count: slots)
            self.decisions = Array(repeating: nil, count: slots)
            self.table = DigestTable(minimumCapacity: slots)
        }

        func slot(of id: Key, digest: UInt64) -> Int? {
            self.table.find(digest: digest) { self.ids[$0] == id }
        }

        mutating func forget(_ slot: Int) {
            guard let id = self.ids[slot] else { return }
            self.table.remove(digest: id.digest, reference: slot)
            self.ids[slot] = nil
            self.decisions[slot] = nil
            if !self.ratings.isEmpty { self.ratings[slot] = nil }
        }
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
            // Byte i in bits (i % 8) * 8 of word i / 8, whatever the machine's byte order.
            var id = id
            id.withUTF8 { bytes in
                withUnsafeMutableBytes(of: &self.packed) { $0.copyMemory(from: UnsafeRawBufferPointer(bytes)) }
            }
            for word in 0..<4 { self.packed[word] = UInt64(littleEndian: self.packed[word]) }
        }

        /// The id's bits mixed into one word: the part is chosen by its high half, the slot in
        /// the part's table by its low half.
        var digest: UInt64 {
            guard self.long == nil else { return UInt64(truncatingIfNeeded: self.hashValue) }
            var mixed =
                self.packed[0] ^ self.packed[1] &* 0x9E37_79B9_7F4A_7C15 ^ self.packed[2] &* 0xC2B2_AE3D_27D4_EB4F
                ^ self.packed[3] &* 0x1656_67B1_9E37_79F9 ^ UInt64(self.count)
            mixed = (mixed ^ mixed >> 31) &* 0xBF58_476D_1CE4_E5B9
            return mixed ^ mixed >> 29
        }
    }

    private final class Part: Sendable {
        let state: Mutex<State>

        init(slots: Int) {
            self.state = Mutex(State(slots: slots))
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
        let id = Key(requestID)
        let digest = id.digest
        self.part(digest).state.withLock { state in
            // The same id again (a client's own id reused) keeps only the newer decision.
            if let older = state.slot(of: id, digest: digest) { state.forget(older) }
            let slot = state.next
            state.forget(slot)
            state.ids[slot] = id
            state.decisions[slot] = decision
            state.table.insert(digest: digest, reference: slot)
            state.next = (slot + 1) % state.ids.count
        }
    }

    func decision(_ requestID: String) -> Decision? {
        let id = Key(requestID)
        let digest = id.digest
        return self.part(digest).state.withLock { state in
            state.slot(of: id, digest: digest).flatMap { state.decisions[$0] }
        }
    }

    private func part(_ digest: UInt64) -> Part {
        self.parts[Int(truncatingIfNeeded: (digest >> 32) % UInt64(self.parts.count))]
    }

    /// Stores `rating` (0 bad ... 1 good) with the request's decision; a second rating of the
    /// same request replaces the first.
    func rate(_ requestID: String, rating: Double) async throws(FeedbackError) -> Decision {
        let id = Key(requestID)
        let digest = id.digest
        let rated: (decision: Decision, previous: Double?)? = self.part(digest).state.withLock { state in
            guard let slot = state.slot(of: id, digest: digest), let decision = state.decisions[slot] else {
                return nil
            }
            defer { state.ratings[slot] = rating }
            return (decision, state.ratings[slot])
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
