/// An answer kept by the response cache: what a hit replays.
///
/// A whole answer keeps its JSON body; a streamed one keeps the `data` of each SSE event (the
/// chunk JSON, in order, without `[DONE]`), so a streaming hit replays the original chunk
/// structure. ``AnswerShaper`` serves either in the shape the client asked for.
package struct StoredAnswer: Sendable, Equatable {
    package enum Body: Sendable, Equatable {
        case whole([UInt8])
        case events([[UInt8]])
    }

    package var body: Body
    /// The model that made the answer (`X-Model-Used` on a hit).
    package var model: String
    package var upstream: String
    /// What the answer cost when it was made, in US dollars as a decimal (the saving per hit).
    package var cost: String
    /// Seconds since 1970 when the entry stops being served.
    package var expiresAt: Int64

    package init(body: Body, model: String, upstream: String, cost: String, expiresAt: Int64) {
        self.body = body
        self.model = model
        self.upstream = upstream
        self.cost = cost
        self.expiresAt = expiresAt
    }

    /// Bytes held in memory (for the byte bound).
    package var size: Int {
        let body: Int
        switch self.body {
        case .whole(let bytes): body = bytes.count
        case .events(let events): body = events.reduce(0) { $0 + $1.count + 16 }
        }
        return body + self.model.utf8.count + self.upstream.utf8.count + self.cost.utf8.count + 64
    }

    // MARK: Wire form (Redis)

    private static let magic: [UInt8] = Array("LSC1".utf8)

    /// A compact binary form: magic, expiry, three strings, then the body, each part
    /// length-prefixed.
    package func encoded() -> [UInt8] {
        var out = Self.magic
        Self.append(UInt64(bitPattern: self.expiresAt), to: &out)
        for text in [self.model, self.upstream, self.cost] { Self.append(Array(text.utf8), to: &out) }
        switch self.body {
        case .whole(let bytes):
            out.append(0)
            Self.append(bytes, to: &out)
        case .events(let events):
            out.append(1)
            Self.append(UInt64(events.count), to: &out)
            for event in events { Self.append(event, to: &out) }
        }
        return out
    }

    /// `nil` for bytes that are not an encoded answer (another version, or damaged).
    package init?(decoding bytes: [UInt8]) {
        var reader = Reader(bytes: bytes)
        guard reader.take(4) == Self.magic, let expiry = reader.uint64(),
            let model = reader.string(), let upstream = reader.string(), let cost = reader.string(),
            let kind = reader.take(1)?.first
        else { return nil }
        switch kind {
        case 0:
            guard let body = reader.data() else { return nil }
            self.body = .whole(body)
        case 1:
            guard let count = reader.uint64(), count <= UInt64(bytes.count) else { return nil }
            var events: [[UInt8]] = []
            for _ in 0..<count {
                guard let event = reader.data() else { return nil }
                events.append(event)
            }
            self.body = .events(events)
        default:
            return nil
        }
        guard reader.isAtEnd else { return nil }
        self.model = model
        self.upstream = upstream
        self.cost = cost
        self.expiresAt = Int64(bitPattern: expiry)
    }

    private static func append(_ value: UInt64, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    private static func append(_ data: [UInt8], to out: inout [UInt8]) {
        self.append(UInt64(data.count), to: &out)
        out.append(contentsOf: data)
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        var isAtEnd: Bool { self.offset == self.bytes.count }

        mutating func take(_ count: Int) -> [UInt8]? {
            guard count >= 0, self.bytes.count - self.offset >= count else { return nil }
            defer { self.offset += count }
            return Array(self.bytes[self.offset..<(self.offset + count)])
        }

        mutating func uint64() -> UInt64? {
            guard let raw = self.take(8) else { return nil }
            return raw.reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }

        mutating func data() -> [UInt8]? {
            guard let count = self.uint64(), count <= UInt64(self.bytes.count - self.offset) else { return nil }
            return self.take(Int(count))
        }

        mutating func string() -> String? {
            self.data().map { String(decoding: $0, as: UTF8.self) }
        }
    }
}
