/// `HeuristicComplexityScorer`'s feature values; `ComplexityScore.features` names them when read.
package struct HeuristicFeatures: Sendable {
    package var length: Double
    package var reasoning: Double
    package var parts: Double
    package var code: Double
    package var math: Double
    package var constraints: Double
    package var turns: Double
    package var tools: Double
    package var media: Double

    /// Names and values, in the order the scorer has always listed them.
    package var list: [(name: String, value: Double)] {
        [
            ("length", self.length), ("reasoning", self.reasoning), ("parts", self.parts), ("code", self.code),
            ("math", self.math), ("constraints", self.constraints), ("turns", self.turns), ("tools", self.tools),
            ("media", self.media),
        ]
    }
}
