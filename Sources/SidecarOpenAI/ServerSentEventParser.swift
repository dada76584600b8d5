import NIOCore

/// One server-sent event: its exact bytes (to relay unchanged) and its `data` payload.
package struct ServerSentEvent: Sendable {
    /// The event's bytes as received, blank-line terminator included.
    package var raw: ByteBuffer
    /// The `data:` lines joined with `\n`; `nil` when the event had none (comments only).
    package var data: String?
}

/// Incremental SSE parser: feed it chunks split anywhere, get complete events back.
///
/// Follows the WHATWG event-stream rules for line ends (`\n`, `\r\n`, `\r`) and the `data`
/// field (one optional space after the colon). A `\r` at the end of a chunk waits for the next
/// chunk, which may start with its `\n`.
package struct ServerSentEventParser: Sendable {
    private var pending: [UInt8] = []
    /// Where scanning resumes inside `pending`.
    private var scanIndex = 0
    /// Start of the current line inside `pending`.
    private var lineStart = 0
    private var dataLines: [String] = []
    private var sawData = false

    package init() {}

    /// Parses `chunk`, returning the events it completes.
    package mutating func feed(_ chunk: ByteBuffer) -> [ServerSentEvent] {
        self.pending.append(contentsOf: chunk.readableBytesView)
        var events: [ServerSentEvent] = []
        var eventStart = 0
        let cr = UInt8(ascii: "\r")
        let lf = UInt8(ascii: "\n")
        var index = self.scanIndex
        while index < self.pending.count {
            let byte = self.pending[index]
            guard byte == cr || byte == lf else {
                index += 1
                continue
            }
            var terminatorEnd = index + 1
            if byte == cr {
                guard index + 1 < self.pending.count else { break }  // wait: may be \r\n
                if self.pending[index + 1] == lf { terminatorEnd = index + 2 }
            }
            let lineEnd = index
            if lineEnd == self.lineStart {
                events.append(self.makeEvent(self.pending[eventStart..<terminatorEnd]))
                eventStart = terminatorEnd
            } else {
                self.field(self.pending[self.lineStart..<lineEnd])
            }
            self.lineStart = terminatorEnd
            index = terminatorEnd
        }
        if eventStart > 0 {
            self.pending.removeFirst(eventStart)
            index -= eventStart
            self.lineStart -= eventStart
        }
        self.scanIndex = index
        return events
    }

    /// Bytes of an event left incomplete at end of stream, to relay as they are.
    package mutating func finish() -> ByteBuffer? {
        defer {
            self = ServerSentEventParser()
        }
        return self.pending.isEmpty ? nil : ByteBuffer(bytes: self.pending)
    }

    private mutating func field(_ line: ArraySlice<UInt8>) {
        let colon = line.firstIndex(of: UInt8(ascii: ":"))
        let name = line[line.startIndex..<(colon ?? line.endIndex)]
        guard name.elementsEqual("data".utf8) else { return }
        var value = colon.map { line[line.index(after: $0)...] } ?? []
        if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        self.dataLines.append(String(decoding: value, as: UTF8.self))
        self.sawData = true
    }

    private mutating func makeEvent(_ raw: ArraySlice<UInt8>) -> ServerSentEvent {
        let data = self.sawData ? self.dataLines.joined(separator: "\n") : nil
        self.dataLines.removeAll(keepingCapacity: true)
        self.sawData = false
        return ServerSentEvent(raw: ByteBuffer(bytes: raw), data: data)
    }
}
