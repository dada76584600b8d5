import Foundation
import Logging
import Synchronization

/// A stderr log handler that formats metadata only when a line is written.
///
/// swift-log's `StreamLogHandler` re-renders its metadata on every change; Hummingbird sets a
/// request id on each request's logger, so that cost was paid per request even when nothing
/// was logged.
struct StandardErrorLogHandler: LogHandler {
    private static let output = Mutex<Void>(())

    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = self.metadata
        if let provided = self.metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let metadata = event.metadata { merged.merge(metadata) { _, new in new } }
        let rendered = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let timestamp = Date().formatted(.iso8601)
        let line =
            "\(timestamp) \(event.level) \(self.label): \(rendered.isEmpty ? "" : rendered + " ")\(event.message)\n"
        Self.output.withLock { _ in FileHandle.standardError.write(Data(line.utf8)) }
    }
}
