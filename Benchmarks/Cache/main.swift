// cache-bench: the semantic cache's search over many entries (the embedding excluded), and the
// exact key's cost per request. Prints p50/p99 per search and per key.
//
//   swift run -c release cache-bench [entries (default 100000)] [searches (default 2000)]
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SidecarCore
import SidecarPolicy

let arguments = CommandLine.arguments
let entries = arguments.count > 1 ? Int(arguments[1]) ?? 100_000 : 100_000
let searches = arguments.count > 2 ? Int(arguments[2]) ?? 2_000 : 2_000
let dimensions = 384

/// Box-Muller over a 64-bit LCG: deterministic samples.
struct Generator {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15

    mutating func gaussian() -> Float {
        self.state = self.state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        let u1 = max(Double(self.state >> 11) * 0x1.0p-53, 1e-12)
        self.state = self.state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        let u2 = Double(self.state >> 11) * 0x1.0p-53
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    mutating func unitVector(_ dimensions: Int) -> [Float] {
        let vector = (0..<dimensions).map { _ in self.gaussian() }
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return vector.map { $0 / norm }
    }
}
var generator = Generator()
func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

// One context holds every entry: the worst case (one app, one system prompt, one model).
let context = CacheKey(bytes: (1, 2, 3, 4))
let index = SemanticIndex(dimensions: dimensions, maxEntries: entries)
var stored: [[Float]] = []
let fillStart = DispatchTime.now().uptimeNanoseconds
for number in 0..<entries {
    let vector = generator.unitVector(dimensions)
    if number < searches { stored.append(vector) }
    index.insert(
        .init(
            context: context,
            key: CacheKey(bytes: (UInt64(number), 0, 0, 0)),
            vector: vector,
            prompt: "prompt \(number)",
            expiresAt: .max
        )
    )
}
let fillSeconds = Double(DispatchTime.now().uptimeNanoseconds - fillStart) / 1e9

// Half the queries are near-duplicates of stored entries (hits), half are new (misses).
var times: [Double] = []
var hits = 0
for number in 0..<searches {
    var query = number % 2 == 0 ? stored[number] : generator.unitVector(dimensions)
    if number % 2 == 0 {
        query = zip(query, (0..<dimensions).map { _ in generator.gaussian() * 0.01 }).map { $0 + $1 }
        let norm = query.reduce(0) { $0 + $1 * $1 }.squareRoot()
        query = query.map { $0 / norm }
    }
    let start = DispatchTime.now().uptimeNanoseconds
    let result = index.search(context: context, vector: query, threshold: 0.87, now: 0) { _, _ in true }
    times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    if result.match != nil { hits += 1 }
}
times.sort()
print(
    String(
        format: "semantic search, %d entries in one context: p50 %.3f ms, p99 %.3f ms, max %.3f ms "
            + "(%d searches, %d hits of %d near-duplicates; fill %.1f s)",
        entries,
        percentile(times, 0.5),
        percentile(times, 0.99),
        times.last ?? 0,
        searches,
        hits,
        searches / 2,
        fillSeconds
    )
)

// The exact key of a typical chat request: canonical form plus SHA-256.
let body = Array(
    #"{"model":"gpt-4o","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Ticket 1-2. You are a senior distributed-systems engineer reviewing a design. Analyze step by step, then prove or refute each claim with a rigorous argument."}],"temperature":0.2}"#
        .utf8
)
var keyTimes: [Double] = []
for _ in 0..<20_000 {
    let start = DispatchTime.now().uptimeNanoseconds
    guard let canonical = CanonicalJSON.canonicalize(body, dropping: ["stream"], maskingPrompt: true),
        CacheKey(hashing: [canonical.context, canonical.prompt]) != nil
    else { fatalError("bad benchmark body") }
    keyTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e3)
}
keyTimes.sort()
print(
    String(
        format: "exact key (canonical JSON + SHA-256) of a %d-byte chat request: p50 %.2f us, p99 %.2f us",
        body.count,
        percentile(keyTimes, 0.5),
        percentile(keyTimes, 0.99)
    )
)

// The two parts of the key: the canonical form alone, and SHA-256 alone.
var formTimes: [Double] = []
var hashTimes: [Double] = []
let message = [UInt8](repeating: 0x61, count: body.count)
for _ in 0..<20_000 {
    var start = DispatchTime.now().uptimeNanoseconds
    _ = CanonicalJSON.canonicalize(body, dropping: ["stream"], maskingPrompt: true)
    formTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e3)
    start = DispatchTime.now().uptimeNanoseconds
    _ = CacheKey.sha256(message)
    hashTimes.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e3)
}
formTimes.sort()
hashTimes.sort()
print(
    String(
        format: "  of which the canonical form p50 %.2f us, SHA-256 of %d bytes p50 %.2f us",
        percentile(formTimes, 0.5),
        message.count,
        percentile(hashTimes, 0.5)
    )
)

// The miss path: what the response cache adds to a request it cannot answer (lookup, then
// storing the answer), through the sidecar's own cache, its store full (every store evicts).
// New prompts, alternating short and long, as in Benchmarks/load/chat.lua.
let longPrompt = String(
    repeating: "Analyze step by step, then prove or refute each claim with a rigorous argument. ",
    count: 18
)
func chatBody(_ number: Int) -> String {
    let prompt = number % 2 == 0 ? "Ticket \(number). \(longPrompt)" : "What is \(number) plus \(number)?"
    return #"{"model":"gpt-4o","messages":[{"role":"system","content":"You are a helpful assistant."},"#
        + #"{"role":"user","content":"\#(prompt)"}],"temperature":0.2}"#
}
let missProbe = CacheMissPathProbe(
    configuration: SidecarConfiguration().cache,
    eventLoop: MultiThreadedEventLoopGroup.singleton.any()
)
let missHeaders: HTTPHeaders = ["content-type": "application/json", "authorization": "Bearer sk-bench-not-a-real-key"]
var missTimes: [Double] = []
let fill = SidecarConfiguration().cache.maxEntries * 2
for number in 0..<(fill + 40_000) {
    guard let nanoseconds = missProbe.missAndStore(chatBody(number), headers: missHeaders) else {
        fatalError("bad miss-path body")
    }
    if number >= fill { missTimes.append(Double(nanoseconds) / 1e3) }
}
let missMean = missTimes.reduce(0, +) / Double(missTimes.count)
missTimes.sort()
print(
    String(
        format: "miss path (lookup + store, store full, %d-byte and %d-byte bodies): mean %.2f us, p50 %.2f us, "
            + "p99 %.2f us",
        chatBody(1).utf8.count,
        chatBody(2).utf8.count,
        missMean,
        percentile(missTimes, 0.5),
        percentile(missTimes, 0.99)
    )
)
