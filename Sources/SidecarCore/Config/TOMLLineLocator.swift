/// Finds the line of a dotted key path (`upstreams[1].base_url`) in TOML source text.
///
/// TOMLKit reports lines only for syntax errors; this gives semantic errors a line too. It
/// understands `[table]` and `[[array]]` headers and `key = value` lines, which is what
/// `sidecar.conf` uses; for keys inside inline tables it returns the line of the enclosing key.
struct TOMLLineLocator: Sendable {
    let file: String
    private let lines: [Substring]

    init(file: String, source: String) {
        self.file = file
        self.lines = source.split(separator: "\n", omittingEmptySubsequences: false)
    }

    func line(of keyPath: String) -> Int? {
        // Split "a[1].b" into (table "a", index 1, key "b").
        var components = keyPath.split(separator: ".").map(String.init)
        guard !components.isEmpty else { return nil }
        var table = ""
        var index: Int?
        if components.count > 1 {
            let head = components.removeFirst()
            if let bracket = head.firstIndex(of: "["), head.hasSuffix("]") {
                table = String(head[..<bracket])
                index = Int(head[head.index(after: bracket)..<head.index(before: head.endIndex)])
            } else {
                table = head
            }
        } else if let bracket = components[0].firstIndex(of: "["), components[0].hasSuffix("]") {
            // "upstreams[2]" alone: the header line of that element.
            let head = components[0]
            table = String(head[..<bracket])
            index = Int(head[head.index(after: bracket)..<head.index(before: head.endIndex)])
            components = []
        }
        let key = components.first.map { String($0.split(separator: "[").first ?? "") }

        var currentTable = ""
        var arrayCounts: [String: Int] = [:]
        var inTarget = table.isEmpty
        for (offset, raw) in self.lines.enumerated() {
            let line = raw.drop { $0 == " " || $0 == "\t" }
            if line.hasPrefix("[[") {
                currentTable = Self.headerName(line.dropFirst(2))
                let count = arrayCounts[currentTable, default: 0]
                arrayCounts[currentTable] = count + 1
                inTarget = currentTable == table && (index == nil || index == count)
                if inTarget && key == nil { return offset + 1 }
            } else if line.hasPrefix("[") {
                currentTable = Self.headerName(line.dropFirst())
                inTarget = currentTable == table
                if inTarget && key == nil { return offset + 1 }
            } else if inTarget, let key, Self.assigns(line, key: key) {
                return offset + 1
            } else if !table.isEmpty, currentTable.isEmpty, Self.assigns(line, key: table) {
                return offset + 1
            }
        }
        return nil
    }

    private static func headerName(_ text: Substring) -> String {
        let end = text.firstIndex(of: "]") ?? text.endIndex
        return text[..<end].trimmingSpaces()
    }

    private static func assigns(_ line: Substring, key: String) -> Bool {
        guard line.hasPrefix(key) else { return false }
        let rest = line.dropFirst(key.count).drop { $0 == " " || $0 == "\t" }
        return rest.hasPrefix("=")
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
