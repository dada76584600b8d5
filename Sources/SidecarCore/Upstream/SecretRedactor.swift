import NIOCore

/// Takes the upstreams' keys out of what an upstream wrote before the client reads it: some
/// servers quote the key they refused in their error body ("Incorrect API key provided: ..."),
/// and the sidecar relays error bodies and quotes upstream messages in its own errors.
///
/// A key becomes as many `*` as it has bytes: a relayed body keeps its length (its
/// `Content-Length` was sent with the head). Used only on failed answers (status 400 and above)
/// and sidecar errors, never on the success path. A key split between two relayed chunks of a
/// failed pass-through answer is not found (error bodies are small, and come in one piece).
struct SecretRedactor: Sendable {
    static let mask = UInt8(ascii: "*")

    /// The keys as bytes, longest first (a key that holds another is removed whole).
    private let secrets: [[UInt8]]

    init(secrets: [String]) {
        self.secrets = Set(secrets.filter { !$0.isEmpty }).map { Array($0.utf8) }.sorted { $0.count > $1.count }
    }

    var isEmpty: Bool { self.secrets.isEmpty }

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
        var output: [UInt8] = []
        var copiedUpTo = 0
        var index = 0
        scan: while index < bytes.count {
            for secret in self.secrets
            where secret[0] == bytes[index] && bytes.count - index >= secret.count
                && bytes[index..<index + secret.count].elementsEqual(secret)
            {
                if output.isEmpty { output.reserveCapacity(bytes.count) }
                output.append(contentsOf: bytes[copiedUpTo..<index])
                output.append(contentsOf: repeatElement(Self.mask, count: secret.count))
                index += secret.count
                copiedUpTo = index
                continue scan
            }
            index += 1
        }
        guard copiedUpTo > 0 else { return nil }
        output.append(contentsOf: bytes[copiedUpTo...])
        return output
    }
}
