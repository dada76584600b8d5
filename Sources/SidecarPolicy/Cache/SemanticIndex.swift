import CSidecarKernels
import Synchronization

/// The semantic cache's vectors: for each context (everything in a request but its prompt),
/// the embeddings of the prompts whose answers are stored, searched by brute force.
///
/// Each vector is kept twice, compactly: as sign bits (48 bytes for 384 dimensions) and as int8
/// with a scale (384 bytes). A search ranks the context's codes by Hamming distance
/// (`sidecar_hamming_nearest`, POPCNT), rescores the nearest ``candidates`` with the int8 dot
/// product, and returns the most similar one the caller's guard admits. Scanning is linear in
/// the context's size: about 0.3 ms per 100,000 entries on one core here (Benchmarks/cache);
/// past a few hundred thousand entries in one context an approximate index (IVF, HNSW) would
/// be the next step.
///
/// Bounded by entries: the oldest inserted goes first. Thread-safe (one lock; a search holds
/// it while it scans, an insert for a few appends).
package final class SemanticIndex: Sendable {
    package struct Entry: Sendable {
        package var context: CacheKey
        package var key: CacheKey
        /// L2-normalised.
        package var vector: [Float]
        package var prompt: String
        package var expiresAt: Int64

        package init(context: CacheKey, key: CacheKey, vector: [Float], prompt: String, expiresAt: Int64) {
            self.context = context
            self.key = key
            self.vector = vector
            self.prompt = prompt
            self.expiresAt = expiresAt
        }
    }

    package struct Match: Sendable, Equatable {
        package var key: CacheKey
        package var similarity: Float
    }

    package struct SearchResult: Sendable, Equatable {
        /// The most similar entry the guard admitted, if any.
        package var match: Match?
        /// The highest similarity seen (reported by `cache-probe` even without a hit).
        package var bestSimilarity: Float
    }

    /// Codes rescored per search.
    package static let candidates = 16

    private struct Group {
        var codes: [UInt64] = []
        var vectors: [Int8] = []
        var scales: [Float] = []
        var keys: [CacheKey] = []
        var prompts: [String] = []
        var expiries: [Int64] = []
    }

    private struct State {
        var groups: [CacheKey: Group] = [:]
        /// Entry key -> its context and row.
        var rows: [CacheKey: (context: CacheKey, row: Int)] = [:]
        /// Insertion order, for eviction (may hold keys already removed).
        var order: [CacheKey] = []
        var orderStart = 0
    }

    package let dimensions: Int
    private let words: Int
    private let maxEntries: Int
    private let state = Mutex(State())

    package init(dimensions: Int, maxEntries: Int) {
        self.dimensions = dimensions
        self.words = (dimensions + 63) / 64
        self.maxEntries = max(0, maxEntries)
    }

    package var count: Int { self.state.withLock { $0.rows.count } }

    /// Adds (or replaces) an entry; the oldest entries go when the index is full.
    package func insert(_ entry: Entry) {
        guard entry.vector.count == self.dimensions, self.maxEntries > 0 else { return }
        let code = Self.code(entry.vector, words: self.words)
        let (quantized, scale) = Self.quantize(entry.vector)
        self.state.withLock { state in
            if state.rows[entry.key] != nil {
                Self.remove(entry.key, from: &state, words: self.words, dims: self.dimensions)
            }
            var group = state.groups.removeValue(forKey: entry.context) ?? Group()
            group.codes.append(contentsOf: code)
            group.vectors.append(contentsOf: quantized)
            group.scales.append(scale)
            group.keys.append(entry.key)
            group.prompts.append(entry.prompt)
            group.expiries.append(entry.expiresAt)
            state.rows[entry.key] = (entry.context, group.keys.count - 1)
            state.groups[entry.context] = group
            state.order.append(entry.key)
            while state.rows.count > self.maxEntries, state.orderStart < state.order.count {
                let oldest = state.order[state.orderStart]
                state.orderStart += 1
                Self.remove(oldest, from: &state, words: self.words, dims: self.dimensions)
            }
            if state.orderStart > 1024 && state.orderStart * 2 > state.order.count {
                state.order.removeFirst(state.orderStart)
                state.orderStart = 0
            }
        }
    }

    package func remove(_ key: CacheKey) {
        self.state.withLock { Self.remove(key, from: &$0, words: self.words, dims: self.dimensions) }
    }

    /// The most similar admitted entry of `context` for the L2-normalised `vector`, at or above
    /// `threshold`. `admits(cachedPrompt, similarity)` is the guard.
    package func search(
        context: CacheKey,
        vector: [Float],
        threshold: Float,
        now: Int64,
        admits: (String, Float) -> Bool
    ) -> SearchResult {
        guard vector.count == self.dimensions else { return SearchResult(match: nil, bestSimilarity: 0) }
        let query = Self.code(vector, words: self.words)
        return self.state.withLock { state -> SearchResult in
            guard let group = state.groups[context], !group.keys.isEmpty else {
                return SearchResult(match: nil, bestSimilarity: 0)
            }
            var indices = [UInt32](repeating: 0, count: Self.candidates)
            var distances = [UInt32](repeating: 0, count: Self.candidates)
            let found = group.codes.withUnsafeBufferPointer { codes in
                query.withUnsafeBufferPointer { query in
                    sidecar_hamming_nearest(
                        codes.baseAddress,
                        group.keys.count,
                        self.words,
                        query.baseAddress,
                        Self.candidates,
                        &indices,
                        &distances
                    )
                }
            }
            var scored: [(row: Int, similarity: Float)] = []
            group.vectors.withUnsafeBufferPointer { vectors in
                vector.withUnsafeBufferPointer { query in
                    for index in indices.prefix(found) {
                        let row = Int(index)
                        guard group.expiries[row] > now, let base = vectors.baseAddress else { continue }
                        let similarity = sidecar_dot_i8_f32(
                            base + row * self.dimensions,
                            group.scales[row],
                            query.baseAddress,
                            self.dimensions
                        )
                        scored.append((row, similarity))
                    }
                }
            }
            scored.sort { $0.similarity > $1.similarity }
            let best = scored.first?.similarity ?? 0
            for candidate in scored where candidate.similarity >= threshold {
                if admits(group.prompts[candidate.row], candidate.similarity) {
                    return SearchResult(
                        match: Match(key: group.keys[candidate.row], similarity: candidate.similarity),
                        bestSimilarity: best
                    )
                }
            }
            return SearchResult(match: nil, bestSimilarity: best)
        }
    }

    // MARK: Internals

    private static func remove(_ key: CacheKey, from state: inout State, words: Int, dims: Int) {
        guard let (context, row) = state.rows.removeValue(forKey: key),
            var group = state.groups.removeValue(forKey: context)
        else { return }
        let last = group.keys.count - 1
        if row != last {
            // Move the last row into the hole.
            for word in 0..<words { group.codes[row * words + word] = group.codes[last * words + word] }
            for dim in 0..<dims { group.vectors[row * dims + dim] = group.vectors[last * dims + dim] }
            group.scales[row] = group.scales[last]
            group.keys[row] = group.keys[last]
            group.prompts[row] = group.prompts[last]
            group.expiries[row] = group.expiries[last]
            state.rows[group.keys[row]] = (context, row)
        }
        group.codes.removeLast(words)
        group.vectors.removeLast(dims)
        group.scales.removeLast()
        group.keys.removeLast()
        group.prompts.removeLast()
        group.expiries.removeLast()
        if !group.keys.isEmpty { state.groups[context] = group }
    }

    static func code(_ vector: [Float], words: Int) -> [UInt64] {
        var code = [UInt64](repeating: 0, count: words)
        for (index, value) in vector.enumerated() where value > 0 { code[index >> 6] |= 1 << UInt64(index & 63) }
        return code
    }

    static func quantize(_ vector: [Float]) -> ([Int8], Float) {
        let peak = vector.reduce(Float(0)) { max($0, abs($1)) }
        guard peak > 0 else { return ([Int8](repeating: 0, count: vector.count), 0) }
        let scale = peak / 127
        return (vector.map { Int8(clamping: Int(($0 / scale).rounded())) }, scale)
    }
}
