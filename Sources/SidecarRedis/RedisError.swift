/// An error a ``RedisClient`` call fails with.
///
/// Compare errors by ``code``; ``message`` carries the detail for logs (the text hiredis or the
/// server gave, never a password).
///
/// A reply the server sends as an error (`-ERR ...`, `-WRONGTYPE ...`) is *not* a `RedisError`:
/// the call succeeds with ``RedisReply/error(_:)``, because in a pipeline the other commands'
/// replies still count.
package struct RedisError: Error, Hashable, CustomStringConvertible {
    /// What kind of failure this is.
    package enum Code: String, Sendable, Hashable {
        /// Redis cannot be reached, or the connection broke during the call, or the client is
        /// `down` and waiting for its next reconnect attempt.
        case unavailable
        /// The server did not answer within the command (or connect) timeout, or the call
        /// waited in line for a connection longer than the command timeout.
        case timeout
        /// Every connection was busy and the line of waiting calls was full.
        case tooManyWaiters
        /// The client was shut down before or during the call.
        case shutdown
        /// The call had no command, or a command with no arguments.
        case invalidCommand
    }

    /// What kind of failure this is.
    package let code: Code
    /// A human-readable detail, for logs.
    package let message: String

    package init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    package var description: String {
        "redis \(self.code.rawValue): \(self.message)"
    }

    /// Redis is down or the connection broke.
    package static func unavailable(_ message: String) -> RedisError {
        RedisError(.unavailable, message)
    }

    /// The server or the line of waiting calls took longer than the timeout.
    package static func timeout(_ message: String) -> RedisError {
        RedisError(.timeout, message)
    }

    package static let tooManyWaiters = RedisError(
        .tooManyWaiters,
        "every connection is busy and the line of waiting calls is full"
    )

    package static let shutdown = RedisError(.shutdown, "the client has been shut down")
}

/// A `redis://` or `unix://` URL or a ``RedisConfiguration`` that cannot be used.
package struct RedisConfigurationError: Error, Hashable, CustomStringConvertible {
    /// What is wrong, in words fit for a configuration error message.
    package let message: String

    package init(_ message: String) {
        self.message = message
    }

    package var description: String {
        self.message
    }
}
