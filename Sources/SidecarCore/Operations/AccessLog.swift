import Foundation
import NIOCore
import NIOPosix
import SidecarOpenAI
import Synchronization

/// One JSON line per request on stderr (journald keeps it): id, app, endpoint, the model asked
/// for and the one used, tier, score, router, cache result, status, latency, tokens and cost.
/// Never a key, a token or a prompt.
///
/// Lines are appended to a buffer under a lock and written out every 200 ms (or at 64 KiB), so
/// a request pays for formatting its line, not for a write to the terminal or the journal.
public final class AccessLog: Sendable {
    private let buffer = Mutex<[UInt8]>([])
    private let flushTask = Mutex<RepeatedTask?>(nil)
    static let flushBytes = 64 * 1024
    private let write: @Sendable ([UInt8]) -> Void

    public init(write: @escaping @Sendable ([UInt8]) -> Void = AccessLog.writeToStandardError) {
        self.write = write
    }

    public static let writeToStandardError: @Sendable ([UInt8]) -> Void = { bytes in
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = Foundation.write(2, raw.baseAddress.map { $0 + offset }, raw.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }

    /// Starts the periodic flush on `eventLoop`.
    func start(on eventLoop: any EventLoop) {
        let task = eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(200), delay: .milliseconds(200)) { _ in
            self.flush()
        }
        self.flushTask.withLock { $0 = task }
    }

    func stop() {
        self.flushTask.withLock { $0?.cancel() }
        self.flush()
    }

    func flush() {
        let bytes = self.buffer.withLock { buffer -> [UInt8] in
            let bytes = buffer
            buffer.removeAll(keepingCapacity: true)
            return bytes
        }
        if !bytes.isEmpty { self.write(bytes) }
    }

    func append(_ line: String) {
        let full = self.buffer.withLock { buffer -> Bool in
            buffer.append(contentsOf: line.utf8)
            buffer.append(UInt8(ascii: "\n"))
            return buffer.count >= Self.flushBytes
        }
        if full { self.flush() }
    }

    /// The line for one finished request.
    func record(_ context: RequestContext, status: Int, streamed: Bool, now: ContinuousClock.Instant = .now) {
        let request = context.request
        let elapsed = (now - request.receivedAt).components
        var line = "{\"ts\":\""
        line += Self.timestamp()
        line += "\",\"id\":" + (String(decoding: JSONString.encode(request.requestID), as: UTF8.self))
        line += ",\"app\":" + (String(decoding: JSONString.encode(context.app), as: UTF8.self))
        line += ",\"endpoint\":\"" + request.endpoint.label + "\""
        if let requested = context.decoded?.completion?.model {
            line += ",\"model_requested\":" + (String(decoding: JSONString.encode(requested), as: UTF8.self))
        }
        if let served = context.served {
            line += ",\"model\":" + (String(decoding: JSONString.encode(served.model), as: UTF8.self))
            line += ",\"upstream\":" + (String(decoding: JSONString.encode(served.upstream), as: UTF8.self))
            if served.fallbackFrom != nil { line += ",\"fallback\":true" }
        }
        if let route = context.route {
            if let tier = route.tier { line += ",\"tier\":\(tier)" }
            line += ",\"route\":\"" + route.routeLabel + "\""
            line += ",\"score\":" + String(format: "%.3f", route.score.value)
            line += ",\"router\":\"" + route.score.router.rawValue + "\""
        }
        line += ",\"cache\":\"" + context.cacheStatus + "\""
        line += ",\"status\":\(status)"
        line += ",\"streamed\":\(streamed)"
        line +=
            ",\"latency_ms\":"
            + String(format: "%.3f", Double(elapsed.seconds) * 1e3 + Double(elapsed.attoseconds) / 1e15)
        if let cost = context.cost {
            if let tokens = cost.promptTokens { line += ",\"prompt_tokens\":\(tokens)" }
            if let tokens = cost.completionTokens { line += ",\"completion_tokens\":\(tokens)" }
            line += ",\"cost_usd\":" + cost.header
            if cost.estimated { line += ",\"cost_estimated\":true" }
        }
        line += "}"
        self.append(line)
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            Int(parts.tm_year) + 1900,
            Int(parts.tm_mon) + 1,
            Int(parts.tm_mday),
            Int(parts.tm_hour),
            Int(parts.tm_min),
            Int(parts.tm_sec),
            Int(now.tv_nsec / 1_000_000)
        )
    }
}
