import CHiredis
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One blocking hiredis connection.
///
/// Every method blocks the calling thread for at most the connect or command timeout, so they
/// run on the client's `NIOThreadPool`, never on an event loop. A connection is used by one
/// thread at a time: the pool hands it from thread to thread under its lock, which is why it
/// can be `@unchecked Sendable`.
final class RedisConnection: @unchecked Sendable {
    private var context: UnsafeMutablePointer<redisContext>?
    /// The client's generation when this connection was opened; a failure of a connection from
    /// an older generation does not take the client down again.
    let generation: Int

    private init(context: UnsafeMutablePointer<redisContext>, generation: Int) {
        self.context = context
        self.generation = generation
    }

    deinit {
        self.close()
    }

    /// Connects, sets the command timeout, and sends `AUTH` and `SELECT` as `url` asks.
    ///
    /// - Parameters:
    ///   - probe: Also send `PING` when neither `AUTH` nor `SELECT` is sent, so that a server that
    ///     accepts connections but does not answer is not taken for up.
    /// - Throws: ``RedisError`` (`unavailable` or `timeout`); the connection is closed then.
    static func open(
        _ configuration: RedisConfiguration,
        generation: Int,
        probe: Bool = false
    ) throws(RedisError) -> RedisConnection {
        let timeout = timeval(configuration.connectTimeout)
        let pointer: UnsafeMutablePointer<redisContext>?
        switch configuration.url.endpoint {
        case .tcp(let host, let port):
            pointer = redisConnectWithTimeout(host, Int32(clamping: port), timeout)
        case .unixSocket(let path):
            pointer = redisConnectUnixWithTimeout(path, timeout)
        }
        guard let pointer else {
            throw RedisError.unavailable("hiredis could not allocate a connection")
        }
        let connection = RedisConnection(context: pointer, generation: generation)
        guard pointer.pointee.err == 0 else {
            throw connection.failure("cannot connect to \(configuration.url)")
        }
        guard redisSetTimeout(pointer, timeval(configuration.commandTimeout)) == REDIS_OK else {
            throw connection.failure("cannot set the command timeout")
        }
        var handshake: [[[UInt8]]] = []
        if let password = configuration.url.password {
            if let username = configuration.url.username {
                handshake.append([Array("AUTH".utf8), Array(username.utf8), Array(password.utf8)])
            } else {
                handshake.append([Array("AUTH".utf8), Array(password.utf8)])
            }
        }
        if configuration.url.database != 0 {
            handshake.append([Array("SELECT".utf8), Array(String(configuration.url.database).utf8)])
        }
        if probe, handshake.isEmpty {
            handshake.append([Array("PING".utf8)])
        }
        guard !handshake.isEmpty else {
            return connection
        }
        let replies = try connection.execute(handshake)
        for (command, reply) in zip(handshake, replies) {
            if case .error(let message) = reply {
                connection.close()
                // The command's name only: AUTH's arguments are secrets.
                let name = String(decoding: command[0], as: UTF8.self)
                throw RedisError.unavailable("\(name) on a new connection failed: \(message)")
            }
        }
        return connection
    }

    /// Sends `commands` in one write and reads one reply for each.
    ///
    /// - Throws: ``RedisError`` (`unavailable` or `timeout`) when the connection broke or the
    ///   server did not answer in time. The connection must then be dropped: it may hold half a
    ///   reply.
    func execute(_ commands: [[[UInt8]]]) throws(RedisError) -> [RedisReply] {
        guard let context = self.context else {
            throw RedisError.unavailable("the connection is closed")
        }
        for command in commands {
            guard Self.append(command, to: context) else {
                throw self.failure("cannot queue a command")
            }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                throw self.failure("the command failed")
            }
            defer { freeReplyObject(raw) }
            replies.append(RedisReply(copying: raw.assumingMemoryBound(to: redisReply.self)))
        }
        return replies
    }

    /// Frees the hiredis context, closing its socket. Safe to call more than once.
    func close() {
        if let context = self.context {
            self.context = nil
            redisFree(context)
        }
    }

    /// Queues one command with `redisAppendCommandArgv`, binary-safe.
    private static func append(_ arguments: [[UInt8]], to context: UnsafeMutablePointer<redisContext>) -> Bool {
        let lengths = arguments.map(\.count)
        var flat: [UInt8] = []
        flat.reserveCapacity(lengths.reduce(1, +))
        for argument in arguments {
            flat.append(contentsOf: argument)
        }
        // A trailing byte keeps the base address non-nil when every argument is empty.
        flat.append(0)
        return flat.withUnsafeBufferPointer { bytes -> Bool in
            guard let base = bytes.baseAddress else {
                return false
            }
            var pointers: [UnsafePointer<CChar>?] = []
            pointers.reserveCapacity(arguments.count)
            var offset = 0
            for length in lengths {
                pointers.append(UnsafeRawPointer(base + offset).assumingMemoryBound(to: CChar.self))
                offset += length
            }
            return pointers.withUnsafeMutableBufferPointer { argv in
                lengths.withUnsafeBufferPointer { argvlen in
                    redisAppendCommandArgv(
                        context,
                        Int32(clamping: arguments.count),
                        argv.baseAddress,
                        argvlen.baseAddress
                    )
                        == REDIS_OK
                }
            }
        }
    }

    /// The context's error as a ``RedisError``; closes the connection, which cannot be reused.
    private func failure(_ what: String) -> RedisError {
        let savedErrno = errno
        guard let context = self.context else {
            return RedisError.unavailable("\(what): the connection is closed")
        }
        let code = context.pointee.err
        let text = withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        self.close()
        let timedOut =
            code == REDIS_ERR_IO
            && ([EAGAIN, EWOULDBLOCK, ETIMEDOUT].contains(savedErrno)
                || [EAGAIN, ETIMEDOUT].contains { String(cString: strerror($0)) == text })
        if timedOut {
            return RedisError.timeout("\(what): timed out (\(text))")
        }
        return RedisError.unavailable("\(what): \(text.isEmpty ? "error \(code)" : text)")
    }
}

extension timeval {
    /// `amount`, at least one microsecond (hiredis reads a zero timeval as "no timeout").
    fileprivate init(_ amount: TimeAmount) {
        let microseconds = max(amount.nanoseconds / 1_000, 1)
        self.init(tv_sec: .init(microseconds / 1_000_000), tv_usec: .init(microseconds % 1_000_000))
    }
}
