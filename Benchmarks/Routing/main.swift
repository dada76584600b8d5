// route-bench: what scoring a prompt costs. The heuristic scorer alone, the learned router with
// the prompt's embedding given (its own cost, and heuristic plus router as the route phase runs
// them), and, separately, the embedding itself. Prints p50/p99 in microseconds.
//
//   swift run -c release route-bench [prompts.jsonl] [router dir] [models dir] [benchmark]
//
// Defaults: ../shared/eval/routing/prompts.jsonl, models/router, models, mmlu (every line whose
// "benchmark" is that; "all" for every line). The embeddings are computed once, one prompt at a
// time (as the sidecar embeds a lone request), and timed as the embedding's cost.
import Foundation
import SidecarEmbedding
import SidecarPolicy

let arguments = CommandLine.arguments
let dataPath = arguments.count > 1 ? arguments[1] : "../shared/eval/routing/prompts.jsonl"
let routerDirectory = arguments.count > 2 ? arguments[2] : "models/router"
let modelsDirectory = arguments.count > 3 ? arguments[3] : "models"
let benchmark = arguments.count > 4 ? arguments[4] : "mmlu"

struct Line: Decodable {
    var benchmark: String?
    var prompt: String
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

func report(_ name: String, _ microseconds: [Double]) {
    let p50 = percentile(microseconds, 0.5)
    let p99 = percentile(microseconds, 0.99)
    let maximum = microseconds.max() ?? 0
    print(
        name.padding(toLength: 44, withPad: " ", startingAt: 0)
            + String(
                format: "p50 %8.2f us   p99 %8.2f us   max %9.2f us   (%d prompts)",
                p50,
                p99,
                maximum,
                microseconds.count
            )
    )
}

func microseconds(_ body: () -> Void) -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1000
}

guard let data = FileManager.default.contents(atPath: dataPath) else {
    print("cannot read \(dataPath)")
    exit(2)
}
let decoder = JSONDecoder()
let prompts = data.split(separator: UInt8(ascii: "\n")).compactMap { try? decoder.decode(Line.self, from: Data($0)) }
    .filter { benchmark == "all" || $0.benchmark == benchmark }.map(\.prompt)
guard !prompts.isEmpty else {
    print("no prompts for benchmark \(benchmark) in \(dataPath)")
    exit(2)
}
let inputs = prompts.map { ScoringInput(prompt: $0) }
let heuristic = HeuristicComplexityScorer()

// Warm up, then time each prompt once per round (three rounds: the median round's time per prompt).
for input in inputs.prefix(500) { _ = heuristic.score(input) }
func timedRounds(_ body: (Int) -> Void) -> [Double] {
    var rounds: [[Double]] = []
    for _ in 0..<3 { rounds.append(inputs.indices.map { index in microseconds { body(index) } }) }
    return inputs.indices.map { index in [rounds[0][index], rounds[1][index], rounds[2][index]].sorted()[1] }
}
print("route-bench: \(prompts.count) \(benchmark) prompts from \(dataPath)")
report("heuristic scorer", timedRounds { index in _ = heuristic.score(inputs[index]) })

// Prompts of about 2,000 tokens (8,000 characters): the heuristic's bound is set there.
let long = inputs.indices.prefix(2_000).map { index -> ScoringInput in
    var text = prompts[index]
    while text.utf8.count < 8_000 { text += "\n" + prompts[(index + text.utf8.count) % prompts.count] }
    return ScoringInput(prompt: String(text.utf8.prefix(8_000)) ?? text)
}
var longTimes: [Double] = []
for _ in 0..<3 {
    let round = long.map { input in microseconds { _ = heuristic.score(input) } }
    longTimes = longTimes.isEmpty ? round : zip(longTimes, round).map { min($0, $1) }
}
report("heuristic scorer, ~2k-token prompts", longTimes)

let router: LearnedRouter
do {
    router = try LearnedRouter.load(directory: routerDirectory)
} catch {
    print("no learned router: \(error)")
    exit(0)
}
let model: MiniLMEmbedder
do {
    model = try MiniLMEmbedder(
        modelDirectory: URL(fileURLWithPath: modelsDirectory).appendingPathComponent("all-MiniLM-L6-v2")
    )
} catch {
    print("no embedding model: \(error)")
    exit(0)
}
_ = try model.embedBlocking(["warm up"])
var embeddings: [[Float]] = []
var embeddingTimes: [Double] = []
for prompt in prompts {
    var vector: [Float] = []
    embeddingTimes.append(microseconds { vector = (try? model.embedBlocking([prompt]).first) ?? [] })
    embeddings.append(unitLength(vector))
}
let heuristicScores = inputs.map { heuristic.score($0) }
let scorer = RoutingScorer(heuristic: heuristic, learned: router)
report(
    "learned router alone (embedding given)",
    timedRounds { index in
        _ = router.score(embedding: embeddings[index], heuristic: heuristicScores[index])
    }
)
report(
    "heuristic + learned router (route phase)",
    timedRounds { index in
        _ = scorer.score(inputs[index], embedding: embeddings[index])
    }
)
report("the embedding itself (MiniLM, one prompt)", embeddingTimes)
