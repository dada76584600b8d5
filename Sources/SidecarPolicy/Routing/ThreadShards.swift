import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// State kept in a few independently locked parts, each thread writing to the part its id
/// hashes to: the event loops (one thread each) then rarely wait on one another for
/// bookkeeping done on every request, and readers (rare: reports) visit every part.
package final class ThreadShards<State: Sendable>: Sendable {
    @usableFromInline final class Shard: Sendable {
        @usableFromInline let mutex: Mutex<State>

        @usableFromInline init(_ state: sending State) {
            self.mutex = Mutex(state)
        }
    }

    @usableFromInline let shards: [Shard]

    package init(count: Int = 8, _ make: () -> State) {
        self.shards = (0..<max(1, count)).map { _ in Shard(make()) }
    }

    /// The calling thread's part. Inlinable, so that each caller's `State` is specialised (a
    /// generic call looked up the type's metadata on every request). Another module's caller
    /// still gets the generic body: such a caller keeps its own non-generic shards and picks one
    /// with ``ThreadShardIndex/local(among:)``.
    @inlinable package func withLocalLock<Result>(_ body: (inout sending State) -> sending Result) -> sending Result {
        self.shards[ThreadShardIndex.local(among: self.shards.count)].mutex.withLock(body)
    }

    /// Every part in turn (reports; `body` sees one part at a time).
    @inlinable package func withEachLock(_ body: (inout sending State) -> sending Void) {
        for shard in self.shards { shard.mutex.withLock(body) }
    }
}

/// Which of `count` parts the calling thread uses (a hash of its id).
package enum ThreadShardIndex {
    @inlinable package static func local(among count: Int) -> Int {
        let id = UInt64(UInt(bitPattern: Int(bitPattern: pthread_self())))
        return Int(((id >> 12) &* 0x9E37_79B9_7F4A_7C15) >> 40) % count
    }
}
