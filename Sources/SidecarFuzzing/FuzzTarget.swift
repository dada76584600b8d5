/// The fuzz targets: each turns one input into a run of the code under test and checks its
/// invariants, throwing ``FuzzFailure`` when one does not hold.
///
/// The same functions serve the libFuzzer driver (`Fuzz/SidecarFuzz`, built by
/// `scripts/fuzz.sh`) and the seeded property tests of `swift test`.
package enum FuzzTarget: String, CaseIterable, Sendable {
    /// Client bytes through the listener's decoder and connection handler.
    case httpRequest = "http-request"
    /// A request body through the decode stage and the `model` rewrite.
    case openAIRequest = "openai-request"
    /// The same, on requests generated from the input (deep, well-formed documents).
    case openAIRequestGenerated = "openai-request-gen"
    /// Upstream bytes through the SSE parser, split anywhere.
    case serverSentEvents = "sse"
    /// `sidecar.conf` text through the configuration parser.
    case configuration = "config"
    /// A request body through the cache key's canonical form.
    case cacheKey = "cache-key"
    /// Two spellings of a generated request through the canonical form.
    case cacheKeyGenerated = "cache-key-gen"

    /// The longest input worth trying (libFuzzer's `-max_len`).
    package var maximumLength: Int {
        switch self {
        case .httpRequest: return 4096
        case .configuration: return 8192
        case .openAIRequestGenerated, .cacheKeyGenerated: return 1024
        case .openAIRequest, .cacheKey, .serverSentEvents: return 4096
        }
    }

    package func run(_ input: [UInt8]) throws(FuzzFailure) {
        switch self {
        case .httpRequest:
            try HTTPRequestCheck.run(input)
        case .openAIRequest:
            try OpenAIRequestCheck.run(input)
        case .openAIRequestGenerated:
            var reader = FuzzInput(input)
            let style = FuzzJSONWriter.Style(&reader)
            let request = OpenAIRequestGenerator.request(&reader)
            try OpenAIRequestCheck.run(FuzzJSONWriter.write(request, style: style))
        case .serverSentEvents:
            try ServerSentEventCheck.run(input)
        case .configuration:
            try ConfigurationCheck.run(input)
        case .cacheKey:
            try CanonicalJSONCheck.run(input)
        case .cacheKeyGenerated:
            var reader = FuzzInput(input)
            let first = FuzzJSONWriter.Style(&reader)
            let second = FuzzJSONWriter.Style(&reader)
            let request = OpenAIRequestGenerator.request(&reader)
            let a = FuzzJSONWriter.write(request, style: first)
            let b = FuzzJSONWriter.write(request, style: second)
            try CanonicalJSONCheck.run(a)
            try CanonicalJSONCheck.checkSpellings(a, b)
        }
    }
}
