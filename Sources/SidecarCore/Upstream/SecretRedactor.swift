import NIOCore

/// Takes the upstreams' keys out of what an upstream wrote before the client reads it: some
/// servers quote the key they refused in their error body ("Incorrect API key provided: ..."),
/// and the sidecar relays error bodies and quotes upstream messages in its own errors.
///
/// A key becomes as many `*` as it has bytes: a relayed body keeps its length (its
/// `Content-Length` was sent with the head). Used only on failed answers (status 400 and above)
/// and sidecar errors, never on the success path. A failed answer relayed in chunks goes through
/// a ``Stream``, so a key split between two chunks is found too.
struct SecretRedactor: Sendable {
    static let mask = UInt8(ascii: "*")

    /// The keys as bytes, longest first (a key that holds another is removed whole).
    private let secrets: [[UInt8]]

    init(secrets: [String]) {
        self.secrets = Set(secrets.filter { !$0.isEmpty }).map { Array($0.utf8) }.sorted { $0.count > $1.count }
    }

    var isEmpty: Bool { self.secrets.isEmpty }

    /// Redacts an answer relayed in chunks: each call returns what is safe to send so far. The
    /// last `longest key - 1` bytes are held back until the next chunk (or ``finish()``): a key
    /// may begin there and end in the next chunk, and a shorter key found there may be the start
    /// of a longer one. Bytes are only delayed, never reordered, so the body keeps its length,
    /// and the chunks joined are what ``redact(_:)`` makes of the whole body.
    struct Stream {
        private let redactor: SecretRedactor
        private let holdBack: Int
        private var held: [UInt8] = []
        /// Where the scan of `held` goes on (past a key masked across the last cut).
        private var resume = 0

        init(_ redactor: SecretRedactor) {
            self.redactor = redactor
            self.holdBack = max((redactor.secrets.first?.count ?? 1) - 1, 0)
        }

        /// The redacted bytes of `chunk` (and of what was held) that no later byte can change.
        mutating func next(_ chunk: ByteBuffer) -> ByteBuffer {
            self.held.append(contentsOf: chunk.readableBytesView)
            // Every key fits whole before `ready`: a match starting there is final.
            let ready = max(self.held.count - self.holdBack, 0)
            self.resume = self.redactor.mask(&self.held, from: self.resume, startingBefore: ready).resume
            let out = ByteBuffer(bytes: self.held[..<ready])
            self.held.removeFirst(ready)
            self.resume = max(self.resume - ready, 0)
            return out
        }

        /// What was held back, redacted: the end of the answer.
        mutating func finish() -> ByteBuffer {
            _ = self.redactor.mask(&self.held, from: self.resume, startingBefore: self.held.count)
            let rest = ByteBuffer(bytes: self.held)
            self.held = []
            self.resume = 0
            return rest
        }
    }

    /// `buffer` with every key replaced; the same buffer when it holds none.
    func redact(_ buffer: ByteBuffer) -> ByteBuffer {
        guard !self.secrets.isEmpty, buffer.readableBytes > 0 else { return buffer }
        guard let redacted = self.redact(bytes: Array(buffer.readableBytesView)) else { return buffer }
        return ByteBuffer(bytes: redacted)
    }

    func redact(_ text: String) -> String {
        guard !self.secrets.isEmpty, let redacted = self.redact(bytes: Array(text.utf8)) else { return text }
        return String(decoding: redacted, as: UTF8.self)
    }

    /// The error with its message redacted.
    func redact(_ error: SidecarError) -> SidecarError {
        let message = self.redact(error.message)
        guard message != error.message else { return error }
        return SidecarError(
            status: error.status,
            type: error.type,
            code: error.code,
            message: message,
            retryAfter: error.retryAfter
        )
    }

    /// `bytes` with every key replaced, or `nil` when none occurs.
    private func redact(bytes: [UInt8]) -> [UInt8]? {
        var bytes = bytes
        return self.mask(&bytes, from: 0, startingBefore: bytes.count).found ? bytes : nil
    }

    /// Masks each key that starts in `bytes[from..<limit]` (longest first, left to right, a
    /// masked key's bytes not searched again); returns where the scan stopped (past `limit`
    /// when the last key ran over it) and whether a key was found.
    private func mask(_ bytes: inout [UInt8], from: Int, startingBefore limit: Int) -> (resume: Int, found: Bool) {
        var index = from
        var found = false
        scan: while index < limit {
            for secret in self.secrets
            where secret[0] == bytes[index] && bytes.count - index >= secret.count
                && bytes[index..<index + secret.count].elementsEqual(secret)
            {
                for position in index..<(index + secret.count) { bytes[position] = Self.mask }
                index += secret.count
                found = true
                continue scan
            }
            index += 1
        }
        return (max(index, from), found)
    }
}
