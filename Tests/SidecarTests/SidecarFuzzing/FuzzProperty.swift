import Foundation
import SidecarFuzzing
import Testing

/// Runs a fuzz target's invariants in `swift test`, without libFuzzer: on the checked-in seeds
/// (`Fuzz/corpus/<target>`), random bytes and seeds mutated with the target's dictionary
/// (`Fuzz/dict/<target>.dict`), from a fixed seed so every run tries the same inputs.
enum FuzzProperty {
    // Tests/SidecarTests/SidecarFuzzing/<this file>
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static func seeds(_ target: FuzzTarget) -> [[UInt8]] {
        let directory = Self.packageRoot.appendingPathComponent("Fuzz/corpus/\(target.rawValue)")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.sorted().compactMap { name in
            (try? Data(contentsOf: directory.appendingPathComponent(name))).map { Array($0) }
        }
    }

    /// One checked-in seed (a found input kept in `Fuzz/corpus/<target>/found-*`).
    static func seed(_ target: FuzzTarget, _ name: String) -> [UInt8] {
        let file = Self.packageRoot.appendingPathComponent("Fuzz/corpus/\(target.rawValue)/\(name)")
        let data = try? Data(contentsOf: file)
        #expect(data != nil, "no seed \(file.path)")
        return data.map { Array($0) } ?? []
    }

    static func tokens(_ target: FuzzTarget) -> [[UInt8]] {
        let file = Self.packageRoot.appendingPathComponent("Fuzz/dict/\(target.rawValue).dict")
        return (try? String(contentsOf: file, encoding: .utf8)).map(FuzzMutator.dictionaryTokens) ?? []
    }

    /// Runs `count` inputs; records the first that breaks an invariant, as a Swift literal to
    /// paste into a regression test.
    static func check(
        _ target: FuzzTarget,
        count: Int,
        seed: UInt64,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let seeds = Self.seeds(target)
        #expect(!seeds.isEmpty, "no seeds in Fuzz/corpus/\(target.rawValue)", sourceLocation: sourceLocation)
        var mutator = FuzzMutator(seed: seed, seeds: seeds, tokens: Self.tokens(target))
        for index in 0..<count {
            let input = mutator.next(maximumLength: target.maximumLength)
            do {
                try target.run(input)
            } catch {
                Issue.record("input \(index): \(error)\ninput: \(Self.literal(input))", sourceLocation: sourceLocation)
                return
            }
        }
    }

    /// Replays one input (a regression test).
    static func replay(_ target: FuzzTarget, _ input: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try target.run(input)
        } catch {
            Issue.record("\(error)", sourceLocation: sourceLocation)
        }
    }

    /// `Array("...".utf8)` with escapes, or a byte array when the input is not UTF-8.
    static func literal(_ input: [UInt8]) -> String {
        if let text = String(validating: input, as: UTF8.self) {
            return "Array(\(String(reflecting: text)).utf8)"
        }
        return "[" + input.map { String(format: "0x%02x", $0) }.joined(separator: ", ") + "]"
    }
}
