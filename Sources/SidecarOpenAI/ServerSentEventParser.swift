import NIOCore

/// One server-sent event: its exact bytes (to relay unchanged) and its `data` payload.
package struct ServerSentEvent: Sendable {
    /// The event's bytes as received, blank-line terminator included.
    package var raw: ByteBuffer
    /// The `data:` lines joined with `\n`; `nil` when the event had none (comments only). One
    /// `data` line (the usual event) is a slice of ``raw``: no copy.
    package var dataBytes: ByteBuffer?

    /// ``dataBytes`` as text (invalid UTF-8 replaced).
    package var data: String? { self.dataBytes.map { String(buffer: $0) } }

    /// Whether the data is exactly `text` (`[DONE]`), without making a string.
    package func dataIs(_ text: StaticString) -> Bool {
        guard let data = self.dataBytes, data.readableBytes == text.utf8CodeUnitCount else { return false }
        return data.withUnsafeReadableBytes { bytes in
            bytes.elementsEqual(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
        }
    }
}

/// Incremental SSE parser: feed it chunks split anywhere, get complete events back.
///
/// Follows the WHATWG event-stream rules for line ends (`\n`, `\r\n`, `\r`) and the `data`
/// field (one optional space after the colon). A `\r` at the end of a chunk waits for the next
/// chunk, which may start with its `\n`.
///
/// Events are slices of the chunks they came in (a chunk of whole events is not copied); only
/// an event split across chunks is put together in a buffer of its own.
package struct ServerSentEventParser: Sendable {
    /// The bytes not yet returned: the start of an incomplete event.
    private var pending = ByteBuffer()
    /// Where scanning resumes, as an offset into `pending`'s readable bytes.
    private var scanIndex = 0
    /// Start of the current line, as an offset into `pending`'s readable bytes.
    private var lineStart = 0
    /// The `data` values of the incomplete event's lines read so far, offsets into `pending`.
    private var dataLines: [Range<Int>] = []

    package init() {}

    /// Parses `chunk`, returning the events it completes. Each byte is scanned once: a line's
    /// `data` value is noted as the line ends.
    package mutating func feed(_ chunk: ByteBuffer) -> [ServerSentEvent] {
        if self.pending.readableBytes == 0 {
            self.pending = chunk
        } else {
            var chunk = chunk
            self.pending.writeBuffer(&chunk)
        }
        // Each event's end, and how many of `lines` (the data values) belong to it and before.
        var ends: [(end: Int, lines: Int)] = []
        var lines = self.dataLines
        self.dataLines = []
        var index = self.scanIndex
        var lineStart = self.lineStart
        self.pending.withUnsafeReadableBytes { bytes in
            let cr = UInt8(ascii: "\r")
            let lf = UInt8(ascii: "\n")
            while index < bytes.count {
                let byte = bytes[index]
                guard byte == cr || byte == lf else {
                    index += 1
                    continue
                }
                var terminatorEnd = index + 1
                if byte == cr {
                    guard index + 1 < bytes.count else { break }  // wait: may be \r\n
                    if bytes[index + 1] == lf { terminatorEnd = index + 2 }
                }
                if index == lineStart {
                    ends.append((terminatorEnd, lines.count))  // a blank line ends an event
                } else if let value = Self.dataValue(bytes, lineStart..<index) {
                    lines.append(value)
                }
                lineStart = terminatorEnd
                index = terminatorEnd
            }
        }
        var events: [ServerSentEvent] = []
        events.reserveCapacity(ends.count)
        var eventStart = 0
        var firstLine = 0
        for (end, lineCount) in ends {
            if let raw = self.pending.getSlice(at: self.pending.readerIndex + eventStart, length: end - eventStart) {
                events.append(ServerSentEvent(raw: raw, dataBytes: self.data(lines[firstLine..<lineCount])))
            }
            eventStart = end
            firstLine = lineCount
        }
        if eventStart > 0 {
            // The rest (an incomplete event) in a buffer of its own: the events returned share
            // the chunk's storage, which the next chunk must not be written into.
            let rest = self.pending.readableBytes - eventStart
            var kept = ByteBuffer()
            if rest > 0, let bytes = self.pending.getSlice(at: self.pending.readerIndex + eventStart, length: rest) {
                kept.reserveCapacity(rest)
                var bytes = bytes
                kept.writeBuffer(&bytes)
            }
            self.pending = kept
            index -= eventStart
            lineStart -= eventStart
        }
        self.dataLines = lines[firstLine...].map { ($0.lowerBound - eventStart)..<($0.upperBound - eventStart) }
        self.scanIndex = index
        self.lineStart = lineStart
        return events
    }

    /// Bytes held for an event not yet complete.
    package var pendingByteCount: Int { self.pending.readableBytes }

    /// Bytes of an event left incomplete at end of stream, to relay as they are.
    package mutating func finish() -> ByteBuffer? {
        defer {
            self = ServerSentEventParser()
        }
        return self.pending.readableBytes == 0 ? nil : self.pending
    }

    /// The `data` of one complete event: its `data` lines' values (ranges of `pending`) joined
    /// with `\n`; one line is a slice, no copy.
    private func data(_ lines: ArraySlice<Range<Int>>) -> ByteBuffer? {
        guard let first = lines.first else { return nil }
        let base = self.pending.readerIndex
        if lines.count == 1 { return self.pending.getSlice(at: base + first.lowerBound, length: first.count) }
        var joined = ByteBuffer()
        for (number, line) in lines.enumerated() {
            if number > 0 { joined.writeInteger(UInt8(ascii: "\n")) }
            if var value = self.pending.getSlice(at: base + line.lowerBound, length: line.count) {
                joined.writeBuffer(&value)
            }
        }
        return joined
    }

    /// The value's range when the line is a `data` field (one optional space after the colon).
    private static func dataValue(_ bytes: UnsafeRawBufferPointer, _ line: Range<Int>) -> Range<Int>? {
        let name = "data".utf8
        guard line.count >= name.count, bytes[line.lowerBound..<(line.lowerBound + name.count)].elementsEqual(name)
        else { return nil }
        var start = line.lowerBound + name.count
        if start == line.upperBound { return start..<start }  // `data` alone: an empty value
        guard bytes[start] == UInt8(ascii: ":") else { return nil }  // `dataX: ...` is another field
        start += 1
        if start < line.upperBound, bytes[start] == UInt8(ascii: " ") { start += 1 }
        return start..<line.upperBound
    }
}
