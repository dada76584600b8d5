import CSidecarKernels
import Foundation
import NIOCore
import NIOPosix
import SidecarEmbedding
import SidecarPolicy
import Synchronization

/// Embeds prompts (for the semantic cache and the learned router) off the event loops, and
/// never makes a request wait behind a queue: a prompt is admitted only when the work queued
/// ahead of it should finish within the caller's latency budget; otherwise the caller goes on
/// without it (the cache without a semantic lookup, the router with the heuristic).
///
/// One worker thread, at the lowest CPU priority (`nice 19`): embedding uses the CPU the proxy
/// leaves idle, so under full load it slows down, the queue estimate grows, and requests skip
/// the embedding rather than the proxy losing throughput. Concurrent requests are embedded
/// together in one batch. The semantic cache's index search runs on the worker too, right
/// after the embedding.
final class PromptEmbedder: Sendable {
    /// Why a prompt got no embedding.
    enum Skip: String, Error, Sendable {
        /// The queue ahead would take longer than the budget.
        case busy
        /// Longer than the model's 256 tokens (and the caller wanted no cut embedding).
        case tooLong = "too_long"
        /// The model failed (logged).
        case failed
    }

    /// A prompt's embedding (unit length); `cut` when the prompt passed the model's 256 tokens
    /// and only its start was embedded (good enough to route by, not to compare for the cache).
    struct Embedding: Sendable, Equatable {
        var vector: [Float]
        var cut: Bool
    }

    typealias Completion = @Sendable (Result<Embedding, Skip>) -> Void

    private struct Job {
        var text: String
        var keepCut: Bool
        var completion: Completion
    }

    private struct State {
        var queue: [Job] = []
        var draining = false
        /// Seconds per prompt, a moving average (starts pessimistic until measured).
        var secondsPerPrompt = 0.004
        var running = 0
    }

    let model: MiniLMEmbedder
    private let pool: NIOThreadPool
    private let state = Mutex(State())
    static let maxBatch = 32

    init(model: MiniLMEmbedder) {
        self.model = model
        self.pool = NIOThreadPool(numberOfThreads: 1)
        self.pool.start()
        self.pool.submit { _ in
            // This thread embeds at the lowest priority (Linux: nice applies per thread).
            _ = sidecar_lower_thread_priority()
            // The first pass through the model is slow (buffers, BLAS threads): pay it now.
            _ = try? model.embedBlocking(["warm up"])
        }
    }

    /// Queues `text`; `completion` runs on the worker thread, or at once with `.busy`.
    ///
    /// - Parameters:
    ///   - budgetMilliseconds: the longest the work queued ahead may take.
    ///   - keepCut: embed a prompt longer than the model's 256 tokens by its start (else `.tooLong`).
    func embed(
        _ text: String,
        budgetMilliseconds: Int,
        keepCut: Bool,
        then completion: @escaping Completion
    ) {
        let budget = Double(budgetMilliseconds) / 1000
        let admitted = self.state.withLock { state -> (admitted: Bool, start: Bool) in
            // The work queued ahead of this prompt (not its own): with nothing ahead it is always
            // admitted, so one slow embedding cannot shut the lookup out for good.
            let ahead = Double(state.queue.count + state.running)
            guard ahead * state.secondsPerPrompt <= budget else { return (false, false) }
            state.queue.append(Job(text: text, keepCut: keepCut, completion: completion))
            let start = !state.draining
            state.draining = true
            return (true, start)
        }
        guard admitted.admitted else { return completion(.failure(.busy)) }
        if admitted.start { self.pool.submit { _ in self.drain() } }
    }

    /// Embeds queued prompts in batches until the queue is empty.
    private func drain() {
        while true {
            let batch = self.state.withLock { state -> [Job] in
                let batch = Array(state.queue.prefix(Self.maxBatch))
                state.queue.removeFirst(batch.count)
                state.running = batch.count
                if batch.isEmpty { state.draining = false }
                return batch
            }
            if batch.isEmpty { return }
            let started = DispatchTime.now().uptimeNanoseconds
            var accepted: [(job: Job, cut: Bool)] = []
            for job in batch {
                // Token ids stop at the model's 256: reaching it means the prompt was cut, so it
                // would be compared by its start only.
                let cut = self.model.tokenize(job.text).count >= MiniLMEmbedder.maxSequenceLength
                if cut && !job.keepCut {
                    job.completion(.failure(.tooLong))
                } else {
                    accepted.append((job, cut))
                }
            }
            let vectors = (try? self.model.embedBlocking(accepted.map(\.job.text))) ?? []
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            self.state.withLock { state in
                state.running = 0
                state.secondsPerPrompt = 0.8 * state.secondsPerPrompt + 0.2 * seconds / Double(max(1, batch.count))
            }
            for (index, accepted) in accepted.enumerated() {
                if index < vectors.count {
                    accepted.job.completion(
                        .success(Embedding(vector: Self.normalized(vectors[index]), cut: accepted.cut))
                    )
                } else {
                    accepted.job.completion(.failure(.failed))
                }
            }
        }
    }

    /// Embeds `texts` at once on the calling thread (`cache-probe`).
    func embedNow(_ texts: [String]) throws -> [[Float]] {
        try self.model.embedBlocking(texts).map(Self.normalized)
    }

    static func normalized(_ vector: [Float]) -> [Float] {
        unitLength(vector)
    }

    func shutdown() {
        try? self.pool.syncShutdownGracefully()
    }
}
