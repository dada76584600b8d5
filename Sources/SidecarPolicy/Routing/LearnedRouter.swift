import Foundation

/// A router fitted by `scripts/fit-router`: small networks over the prompt's MiniLM embedding
/// and the heuristic features, whose averaged output is mapped to the share of the fitting
/// prompts that scored lower (so a tier's `max_score` of 0.6 keeps about 60% of traffic like
/// the fitting data below it).
///
/// ```
/// z = (concat(embedding, features) - input_mean) / input_scale
/// raw = mean over members of the network's output (dense layers, relu or linear)
/// score = quantiles(raw)             piecewise linear, clamped
/// ```
///
/// Loaded once from `router.json` (format `llm-sidecar-router/1`); immutable and thread-safe.
/// Scoring allocates two small buffers and costs a few microseconds.
public struct LearnedRouter: Sendable {
    public static let format = "llm-sidecar-router/1"
    public static let fileName = "router.json"

    /// Where the weights came from: the fitting script's version and the data's digest.
    public struct Provenance: Sendable, Equatable {
        public var directory: String
        public var fitVersion: String
        public var dataSHA256: String
        public var dataLines: Int
    }

    struct Layer: Sendable {
        var inputs: Int
        var outputs: Int
        /// Row-major, `outputs` rows of `inputs`.
        var weights: [Float]
        var bias: [Float]
        var relu: Bool
    }

    /// A monotone piecewise-linear map (`raw` ascending).
    struct Knots: Sendable {
        var raw: [Double]
        var score: [Double]

        func map(_ value: Double) -> Double {
            guard let first = self.raw.first, let last = self.raw.last else { return value }
            if value <= first { return self.score[0] }
            if value >= last { return self.score[self.score.count - 1] }
            // Binary search for the segment holding `value`.
            var low = 0
            var high = self.raw.count - 1
            while high - low > 1 {
                let middle = (low + high) / 2
                if self.raw[middle] <= value { low = middle } else { high = middle }
            }
            let span = self.raw[high] - self.raw[low]
            guard span > 0 else { return self.score[high] }
            let t = (value - self.raw[low]) / span
            return self.score[low] + t * (self.score[high] - self.score[low])
        }
    }

    public let provenance: Provenance
    public let embeddingDimensions: Int
    /// Heuristic feature names in input order, after the embedding (`heuristic` is the heuristic score).
    public let featureNames: [String]
    let mean: [Float]
    let inverseScale: [Float]
    let members: [[Layer]]
    let quantiles: Knots
    let heuristicQuantiles: Knots
    let widest: Int

    /// Loads `directory/router.json`.
    public static func load(directory: String) throws(RouterLoadError) -> LearnedRouter {
        let url = URL(fileURLWithPath: directory).appendingPathComponent(Self.fileName)
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw RouterLoadError(path: url.path, reason: "cannot be read (\(error.localizedDescription))")
        }
        return try LearnedRouter(json: data, directory: directory, path: url.path)
    }

    init(json data: Data, directory: String, path: String) throws(RouterLoadError) {
        let file: RouterFile
        do {
            file = try JSONDecoder().decode(RouterFile.self, from: data)
        } catch {
            throw RouterLoadError(path: path, reason: "is not a router file: \(error)")
        }
        func fail(_ reason: String) -> RouterLoadError { RouterLoadError(path: path, reason: reason) }
        guard file.format == Self.format else {
            throw fail("has format \"\(file.format)\"; this sidecar reads \"\(Self.format)\"")
        }
        for name in file.features where !Self.knownFeatures.contains(name) {
            throw fail("names an unknown feature \"\(name)\"")
        }
        let width = file.embedding.dim + file.features.count
        guard file.embedding.dim > 0, file.inputMean.count == width, file.inputScale.count == width else {
            throw fail("input_mean and input_scale must have \(width) values (embedding + features)")
        }
        guard file.inputScale.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw fail("input_scale values must be positive")
        }
        guard !file.members.isEmpty else { throw fail("has no members") }
        var members: [[Layer]] = []
        var widest = width
        for (memberIndex, member) in file.members.enumerated() {
            var inputs = width
            var layers: [Layer] = []
            for (layerIndex, layer) in member.layers.enumerated() {
                let place = "members[\(memberIndex)].layers[\(layerIndex)]"
                guard layer.in == inputs, layer.out > 0, layer.weights.count == layer.in * layer.out,
                    layer.bias.count == layer.out
                else { throw fail("\(place) has the wrong shape (expected \(inputs) inputs, out x in weights)") }
                guard layer.activation == "relu" || layer.activation == "linear" else {
                    throw fail("\(place) has activation \"\(layer.activation)\" (relu or linear)")
                }
                guard layer.weights.allSatisfy(\.isFinite), layer.bias.allSatisfy(\.isFinite) else {
                    throw fail("\(place) holds a value that is not finite")
                }
                layers.append(
                    Layer(
                        inputs: layer.in,
                        outputs: layer.out,
                        weights: layer.weights,
                        bias: layer.bias,
                        relu: layer.activation == "relu"
                    )
                )
                inputs = layer.out
                widest = max(widest, layer.out)
            }
            guard inputs == 1 else { throw fail("members[\(memberIndex)] must end in one output") }
            members.append(layers)
        }
        for (name, knots) in [("quantiles", file.quantiles), ("heuristic_quantiles", file.heuristicQuantiles)] {
            guard knots.raw.count == knots.score.count, knots.raw.count >= 2,
                zip(knots.raw, knots.raw.dropFirst()).allSatisfy({ $0 <= $1 }),
                zip(knots.score, knots.score.dropFirst()).allSatisfy({ $0 <= $1 })
            else { throw fail("\(name) must be two ascending lists of the same length") }
        }
        self.provenance = Provenance(
            directory: directory,
            fitVersion: file.fitVersion,
            dataSHA256: file.dataSHA256,
            dataLines: file.dataLines ?? 0
        )
        self.embeddingDimensions = file.embedding.dim
        self.featureNames = file.features
        self.mean = file.inputMean
        self.inverseScale = file.inputScale.map { 1 / $0 }
        self.members = members
        self.quantiles = Knots(raw: file.quantiles.raw, score: file.quantiles.score)
        self.heuristicQuantiles = Knots(raw: file.heuristicQuantiles.raw, score: file.heuristicQuantiles.score)
        self.widest = widest
    }

    /// The inputs a router may name after the embedding.
    static let knownFeatures: Set<String> = [
        "length", "reasoning", "parts", "code", "math", "constraints", "turns", "tools", "media", "heuristic",
    ]

    /// The network's raw output for an embedding and the heuristic score (with its features).
    ///
    /// - Returns: `nil` when the embedding has the wrong length.
    public func raw(embedding: [Float], heuristic: ComplexityScore) -> Double? {
        guard embedding.count == self.embeddingDimensions else { return nil }
        let width = self.mean.count
        var input = [Float](repeating: 0, count: width)
        var features = heuristic.features
        features.append(("heuristic", heuristic.value))
        input.withUnsafeMutableBufferPointer { input in
            self.mean.withUnsafeBufferPointer { mean in
                self.inverseScale.withUnsafeBufferPointer { scale in
                    embedding.withUnsafeBufferPointer { embedding in
                        for index in 0..<embedding.count {
                            input[index] = (embedding[index] - mean[index]) * scale[index]
                        }
                    }
                    for (offset, name) in self.featureNames.enumerated() {
                        let index = self.embeddingDimensions + offset
                        let value = features.first { $0.name == name }?.value ?? 0
                        input[index] = (Float(value) - mean[index]) * scale[index]
                    }
                }
            }
        }
        var total = 0.0
        var current = [Float](repeating: 0, count: self.widest)
        var next = [Float](repeating: 0, count: self.widest)
        for layers in self.members {
            for index in 0..<width { current[index] = input[index] }
            for layer in layers {
                Self.apply(layer, from: current, to: &next)
                swap(&current, &next)
            }
            total += Double(current[0])
        }
        return total / Double(self.members.count)
    }

    /// The routing score, 0...1, for an embedding and the heuristic score; `nil` when the
    /// embedding has the wrong length.
    public func score(embedding: [Float], heuristic: ComplexityScore) -> Double? {
        self.raw(embedding: embedding, heuristic: heuristic).map { self.quantiles.map($0) }
    }

    /// The heuristic score on the learned score's scale (the share of the fitting prompts the
    /// heuristic scored lower), so that tiers mean the same when the heuristic decides.
    public func heuristicOnSameScale(_ value: Double) -> Double {
        self.heuristicQuantiles.map(value)
    }

    private static func apply(_ layer: Layer, from input: [Float], to output: inout [Float]) {
        layer.weights.withUnsafeBufferPointer { weights in
            input.withUnsafeBufferPointer { input in
                output.withUnsafeMutableBufferPointer { output in
                    for row in 0..<layer.outputs {
                        let base = row * layer.inputs
                        var sum: Float = 0
                        for column in 0..<layer.inputs {
                            sum += weights[base + column] * input[column]
                        }
                        sum += layer.bias[row]
                        output[row] = layer.relu ? max(sum, 0) : sum
                    }
                }
            }
        }
    }
}

/// A router directory that could not be used: which file and why.
public struct RouterLoadError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String

    public var description: String { "\(self.path) \(self.reason)" }
}

/// `router.json` as `scripts/fit-router` writes it.
private struct RouterFile: Decodable {
    struct Embedding: Decodable {
        var model: String
        var dim: Int
    }

    struct Layer: Decodable {
        var `in`: Int
        var out: Int
        var activation: String
        var weights: [Float]
        var bias: [Float]
    }

    struct Member: Decodable {
        var layers: [Layer]
    }

    struct Knots: Decodable {
        var raw: [Double]
        var score: [Double]
    }

    var format: String
    var fitVersion: String
    var dataSHA256: String
    var dataLines: Int?
    var embedding: Embedding
    var features: [String]
    var inputMean: [Float]
    var inputScale: [Float]
    var members: [Member]
    var quantiles: Knots
    var heuristicQuantiles: Knots

    enum CodingKeys: String, CodingKey {
        case format, embedding, features, members, quantiles
        case fitVersion = "fit_version"
        case dataSHA256 = "data_sha256"
        case dataLines = "data_lines"
        case inputMean = "input_mean"
        case inputScale = "input_scale"
        case heuristicQuantiles = "heuristic_quantiles"
    }
}

/// `vector` scaled to unit length (unchanged when it is all zeros): how prompt embeddings are
/// compared and how the router was fitted.
package func unitLength(_ vector: [Float]) -> [Float] {
    let norm = vector.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
    return norm > 0 ? vector.map { $0 / norm } : vector
}
