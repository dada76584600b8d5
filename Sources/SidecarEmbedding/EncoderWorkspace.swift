/// Scratch buffers for one forward pass, reused across calls to avoid per-call allocation.
///
/// A workspace is used by one thread at a time: ``MiniLMEmbedder`` hands each call its own,
/// taken from and returned to a locked pool, which is what makes the unchecked `Sendable` safe.
package final class EncoderWorkspace: @unchecked Sendable {
    private let hiddenSize: Int
    private let intermediateSize: Int
    private(set) var rowCapacity = 0
    private(set) var scoreCapacity = 0

    /// `[rows, hidden]`: the running hidden state.
    private(set) var hidden: UnsafeMutablePointer<Float>
    /// `[rows, 3 * hidden]`: queries, keys and values side by side.
    private(set) var queryKeyValue: UnsafeMutablePointer<Float>
    /// `[rows, hidden]`: attention context (heads concatenated).
    private(set) var context: UnsafeMutablePointer<Float>
    /// `[rows, hidden]`: a dense layer's output before Add & Norm.
    private(set) var projection: UnsafeMutablePointer<Float>
    /// `[rows, intermediate]`: the feed-forward activations.
    private(set) var intermediate: UnsafeMutablePointer<Float>
    /// `[rows, intermediate]`: a dense layer's input rounded to bfloat16 (bfloat16 kernel only).
    private(set) var roundedInput: UnsafeMutablePointer<UInt16>
    /// At least `[longest, longest]`: one head's attention scores (or the AVX-512 attention
    /// kernel's scratch).
    private(set) var scores: UnsafeMutablePointer<Float>

    package init(hiddenSize: Int, intermediateSize: Int) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.hidden = .allocate(capacity: 0)
        self.queryKeyValue = .allocate(capacity: 0)
        self.context = .allocate(capacity: 0)
        self.projection = .allocate(capacity: 0)
        self.intermediate = .allocate(capacity: 0)
        self.roundedInput = .allocate(capacity: 0)
        self.scores = .allocate(capacity: 0)
    }

    deinit {
        self.deallocateRows()
        self.scores.deallocate()
    }

    /// Makes room for `rows` packed tokens whose longest sequence has `longest` tokens, and
    /// for at least `scores` floats of attention scratch.
    package func reserve(rows: Int, longest: Int, scores: Int = 0) {
        if rows > self.rowCapacity {
            let capacity = (rows + 63) / 64 * 64
            self.deallocateRows()
            self.hidden = .allocate(capacity: capacity * self.hiddenSize)
            self.queryKeyValue = .allocate(capacity: capacity * self.hiddenSize * 3)
            self.context = .allocate(capacity: capacity * self.hiddenSize)
            self.projection = .allocate(capacity: capacity * self.hiddenSize)
            self.intermediate = .allocate(capacity: capacity * self.intermediateSize)
            self.roundedInput = .allocate(capacity: capacity * self.intermediateSize)
            self.rowCapacity = capacity
        }
        let scoreCount = max(longest * longest, scores)
        if scoreCount > self.scoreCapacity {
            self.scores.deallocate()
            self.scoreCapacity = max(scoreCount, 64 * 64)
            self.scores = .allocate(capacity: self.scoreCapacity)
        }
    }

    private func deallocateRows() {
        self.hidden.deallocate()
        self.queryKeyValue.deallocate()
        self.context.deallocate()
        self.projection.deallocate()
        self.intermediate.deallocate()
        self.roundedInput.deallocate()
    }
}
