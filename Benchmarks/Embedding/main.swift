// embed-bench: latency of the native all-MiniLM-L6-v2 embedder on one core.
//
//   swift build -c release --product embed-bench
//   .build/release/embed-bench [MODEL_DIR]
//
// Single sentences run on the calling thread (one core); the served batch path runs through
// LocalEmbedder, which splits a batch across the cores.
//
// MODEL_DIR defaults to $LLM_SIDECAR_MODELS_DIR/all-MiniLM-L6-v2, else ./models/all-MiniLM-L6-v2.
// Targets: a 32-token sentence in <= 5 ms p50; a batch of 64 varied sentences in <= 100 ms p50.

import Foundation
import NIOCore
import SidecarCore
import SidecarEmbedding

let singleTarget = 5.0
let batchTarget = 100.0
let singleRuns = 300
let batchRuns = 15

func modelDirectory() -> URL {
    let arguments = CommandLine.arguments.dropFirst()
    if let explicit = arguments.first {
        return URL(fileURLWithPath: explicit)
    }
    let models = ProcessInfo.processInfo.environment["LLM_SIDECAR_MODELS_DIR"].flatMap { $0.isEmpty ? nil : $0 }
    return URL(fileURLWithPath: models ?? "./models").appendingPathComponent("all-MiniLM-L6-v2")
}

func milliseconds(_ duration: Duration) -> Double {
    let components = duration.components
    return Double(components.seconds) * 1e3 + Double(components.attoseconds) / 1e15
}

func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.down)))]
}

func measure(runs: Int, warmUp: Int, _ body: () throws -> Void) rethrows -> [Double] {
    for _ in 0..<warmUp {
        try body()
    }
    let clock = ContinuousClock()
    var samples: [Double] = []
    samples.reserveCapacity(runs)
    for _ in 0..<runs {
        samples.append(milliseconds(try clock.measure(body)))
    }
    return samples.sorted()
}

func verdict(_ value: Double, _ target: Double) -> String {
    value <= target ? "PASS" : "FAIL (\(String(format: "%.1f", value / target))x the target)"
}

/// 64 varied prompts of the kind the semantic cache sees: questions, requests, commands.
let batchSentences: [String] = {
    let subjects = [
        "the capital of France", "a Python function that reverses a linked list", "sourdough bread",
        "the difference between TCP and UDP", "a polite email declining a meeting",
        "photosynthesis for a ten year old", "the causes of the French Revolution", "a SQL query for the top customers",
        "how vaccines train the immune system", "a haiku about autumn rain", "Kubernetes pods and deployments",
        "the plot of Hamlet", "a budget for a week in Lisbon", "why the sky is blue", "unit tests in Swift",
        "compound interest with an example",
    ]
    let frames = [
        "What is %@?", "Explain %@ in simple terms, please.",
        "Can you write a short summary about %@ for my notes?",
        "I need help with %@: give me three key points and one common mistake to avoid.",
    ]
    var sentences: [String] = []
    for (index, subject) in subjects.enumerated() {
        for frame in frames.indices {
            sentences.append(String(format: frames[(frame + index) % frames.count], subject))
        }
    }
    return sentences
}()

let single =
    "Please summarise this customer complaint about a late parcel and draft a short, polite reply that offers a full refund or a free replacement today."

do {
    let directory = modelDirectory()
    let loadStart = ContinuousClock.now
    let embedder = try MiniLMEmbedder(modelDirectory: directory)
    let loadTime = milliseconds(ContinuousClock.now - loadStart)
    let singleTokens = embedder.tokenize(single).count
    let batchTokens = batchSentences.reduce(0) { $0 + embedder.tokenize($1).count }
    print(
        "model \(embedder.modelName) (\(embedder.dimensions) dims) from \(directory.path), loaded in \(String(format: "%.0f", loadTime)) ms"
    )

    let singleSamples = try measure(runs: singleRuns, warmUp: 30) { _ = try embedder.embedBlocking([single]) }
    let singleP50 = percentile(singleSamples, 0.50)
    let singleP99 = percentile(singleSamples, 0.99)
    print(
        String(
            format: "single sentence, %d tokens, %d runs: p50 %.2f ms, p99 %.2f ms (target p50 <= %.0f ms) %@",
            singleTokens,
            singleRuns,
            singleP50,
            singleP99,
            singleTarget,
            verdict(singleP50, singleTarget)
        )
    )

    let short = "What is the capital of France?"
    let shortSamples = try measure(runs: singleRuns, warmUp: 30) { _ = try embedder.embedBlocking([short]) }
    print(
        String(
            format: "short query, %d tokens, %d runs: p50 %.2f ms, p99 %.2f ms (no target; typical cache lookup)",
            embedder.tokenize(short).count,
            singleRuns,
            percentile(shortSamples, 0.50),
            percentile(shortSamples, 0.99)
        )
    )

    let batchSamples = try measure(runs: batchRuns, warmUp: 2) { _ = try embedder.embedBlocking(batchSentences) }
    let batchP50 = percentile(batchSamples, 0.50)
    print(
        String(
            format: "batch of %d sentences, %d tokens, %d runs: p50 %.1f ms, min %.1f ms %@",
            batchSentences.count,
            batchTokens,
            batchRuns,
            batchP50,
            batchSamples[0],
            "(one core; reference)"
        )
    )

    // The served path: LocalEmbedder splits a batch across the machine's cores.
    let local = LocalEmbedder(model: embedder)
    var parallelSamples: [Double] = []
    for run in 0..<(batchRuns + 2) {
        let start = ContinuousClock.now
        _ = try await local.embed(batchSentences)
        if run >= 2 { parallelSamples.append(milliseconds(ContinuousClock.now - start)) }
    }
    parallelSamples.sort()
    let parallelP50 = percentile(parallelSamples, 0.50)
    print(
        String(
            format:
                "batch of %d sentences via LocalEmbedder on %d cores: p50 %.1f ms, min %.1f ms (target p50 <= %.0f ms) %@",
            batchSentences.count,
            System.coreCount,
            parallelP50,
            parallelSamples[0],
            batchTarget,
            verdict(parallelP50, batchTarget)
        )
    )
} catch {
    print("embed-bench: \(error)")
    exit(1)
}
