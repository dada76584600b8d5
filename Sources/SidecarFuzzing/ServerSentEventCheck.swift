import NIOCore
import SidecarOpenAI

/// The SSE parser fed upstream bytes split anywhere.
///
/// The input is a two-byte header, then the stream. The header picks the split: byte by byte,
/// or at up to 16 points drawn from the second byte. Invariants: the events (raw bytes and
/// `data`) and the bytes left at the end are the same whole or split; the raw events and the
/// rest put back together are the stream (the relay loses and adds nothing); each event's
/// `data` is what a direct reading of its raw lines gives.
package enum ServerSentEventCheck {
    static let target = "sse"

    package static func run(_ input: [UInt8]) throws(FuzzFailure) {
        guard input.count >= 2 else { return }
        let stream = Array(input[2...])
        let whole = Self.parse([stream[...]])
        let split = Self.parse(Self.pieces(stream, mode: input[0], seed: input[1]))
        guard whole.events.count == split.events.count,
            zip(whole.events, split.events).allSatisfy({ $0.raw == $1.raw && $0.data == $1.data }),
            whole.rest == split.rest
        else {
            throw Self.failure("split parsing gave \(Self.describe(split)), whole \(Self.describe(whole))", input)
        }
        let relayed = whole.events.flatMap { $0.raw } + whole.rest
        guard relayed == stream else {
            throw Self.failure("the relayed bytes \(Self.text(relayed)) are not the stream", input)
        }
        for event in whole.events {
            let expected = Self.data(ofEvent: event.raw)
            guard event.data == expected else {
                throw Self.failure(
                    "event \(Self.text(event.raw)) has data \(String(reflecting: event.data)), "
                        + "expected \(String(reflecting: expected))",
                    input
                )
            }
        }
    }

    private struct Parsed {
        var events: [(raw: [UInt8], data: String?)] = []
        var rest: [UInt8] = []
    }

    private static func parse(_ pieces: [ArraySlice<UInt8>]) -> Parsed {
        var parser = ServerSentEventParser()
        var parsed = Parsed()
        for piece in pieces {
            for event in parser.feed(ByteBuffer(bytes: piece)) {
                parsed.events.append((raw: Array(event.raw.readableBytesView), data: event.data))
            }
        }
        if let rest = parser.finish() { parsed.rest = Array(rest.readableBytesView) }
        return parsed
    }

    /// Mode 0 mod 4: one byte at a time; otherwise up to 16 cut points from a generator seeded
    /// with `seed` (so the fuzzer can vary them).
    private static func pieces(_ stream: [UInt8], mode: UInt8, seed: UInt8) -> [ArraySlice<UInt8>] {
        guard stream.count > 1 else { return [stream[...]] }
        if mode % 4 == 0 { return stream.indices.map { stream[$0...$0] } }
        var random = SplitMix64(seed: UInt64(seed) << 8 | UInt64(mode))
        let count = Int(mode / 4) % 16 + 1
        let cuts = Set((0..<count).map { _ in Int(random.next() % UInt64(stream.count - 1)) + 1 }).sorted()
        var pieces: [ArraySlice<UInt8>] = []
        var start = 0
        for cut in cuts {
            pieces.append(stream[start..<cut])
            start = cut
        }
        pieces.append(stream[start...])
        return pieces
    }

    /// The `data` of one raw event read directly: its lines (ended by CR LF, CR or LF) up to
    /// the blank one; `data` fields joined with LF, one space after the colon dropped.
    static func data(ofEvent raw: [UInt8]) -> String? {
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        var index = 0
        while index < raw.count {
            let byte = raw[index]
            if byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") {
                lines.append(raw[start..<index])
                if byte == UInt8(ascii: "\r"), index + 1 < raw.count, raw[index + 1] == UInt8(ascii: "\n") {
                    index += 1
                }
                start = index + 1
            }
            index += 1
        }
        var data: [String] = []
        for line in lines where !line.isEmpty {
            let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.endIndex
            guard line[line.startIndex..<colon].elementsEqual("data".utf8) else { continue }
            var value = colon < line.endIndex ? line[(colon + 1)...] : []
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
            data.append(String(decoding: value, as: UTF8.self))
        }
        return data.isEmpty ? nil : data.joined(separator: "\n")
    }

    private static func describe(_ parsed: Parsed) -> String {
        let events = parsed.events.map { "\(Self.text($0.raw)) data \(String(reflecting: $0.data))" }
        return "[\(events.joined(separator: ", "))] rest \(Self.text(parsed.rest))"
    }

    static func failure(_ message: String, _ input: [UInt8]) -> FuzzFailure {
        FuzzFailure(Self.target, "\(message); input \(Self.text(input))")
    }

    static func text(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(400), as: UTF8.self)
        return String(reflecting: bytes.count > 400 ? text + "..." : text)
    }
}
