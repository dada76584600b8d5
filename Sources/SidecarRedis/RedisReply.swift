import CHiredis
import NIOCore

/// One reply from Redis (RESP2).
///
/// A reply is copied out of hiredis's `redisReply` tree, which is then freed, so a `RedisReply`
/// owns its bytes and can cross threads.
package enum RedisReply: Sendable, Hashable {
    /// A bulk string: binary-safe bytes (a `GET` hit, an `XADD` entry ID, ...).
    case string(ByteBuffer)
    /// A simple status, such as `OK` or `PONG`.
    case status(String)
    /// An integer (`INCR`, `DEL`, `TTL`, ...).
    case integer(Int64)
    /// An array of replies (`MGET`, `LRANGE`, `XRANGE`, a transaction's `EXEC`, ...).
    case array([RedisReply])
    /// The null bulk string or null array (a `GET` miss, say).
    case null
    /// An error the server answered with, such as `ERR unknown command` or `WRONGTYPE ...`;
    /// the connection stays usable.
    case error(String)

    /// The bytes of a bulk string or status; `nil` for other replies.
    package var bytes: [UInt8]? {
        switch self {
        case .string(let buffer): return Array(buffer.readableBytesView)
        case .status(let text): return Array(text.utf8)
        case .integer, .array, .null, .error: return nil
        }
    }

    /// A bulk string or status as UTF-8 text (invalid bytes replaced); `nil` for other replies.
    package var string: String? {
        switch self {
        case .string(let buffer): return String(buffer: buffer)
        case .status(let text): return text
        case .integer, .array, .null, .error: return nil
        }
    }

    /// An integer reply, or a bulk string holding a decimal integer; `nil` otherwise.
    package var integer: Int64? {
        switch self {
        case .integer(let value): return value
        case .string(let buffer): return Int64(String(buffer: buffer))
        case .status, .array, .null, .error: return nil
        }
    }

    /// The elements of an array reply; `nil` otherwise.
    package var array: [RedisReply]? {
        if case .array(let elements) = self {
            return elements
        }
        return nil
    }

    /// An `HGETALL` reply (field, value, field, value, ...) as a dictionary of text; empty for
    /// other replies.
    package var fieldsAndValues: [String: String] {
        guard let elements = self.array else { return [:] }
        var result: [String: String] = [:]
        var index = 0
        while index + 1 < elements.count {
            if let field = elements[index].string, let value = elements[index + 1].string { result[field] = value }
            index += 2
        }
        return result
    }

    /// Whether this is the null reply.
    package var isNull: Bool {
        self == .null
    }

    /// The server's error text, when this is an error reply.
    package var errorMessage: String? {
        if case .error(let message) = self {
            return message
        }
        return nil
    }

    /// Copies a hiredis reply tree. The caller still owns `reply` and frees it with
    /// `freeReplyObject`.
    init(copying reply: UnsafePointer<redisReply>) {
        let node = reply.pointee
        switch node.type {
        case REDIS_REPLY_STRING:
            self = .string(ByteBuffer(bytes: UnsafeRawBufferPointer(start: node.str, count: node.len)))
        case REDIS_REPLY_STATUS:
            self = .status(Self.text(node))
        case REDIS_REPLY_ERROR:
            self = .error(Self.text(node))
        case REDIS_REPLY_INTEGER:
            self = .integer(Int64(node.integer))
        case REDIS_REPLY_NIL:
            self = .null
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(node.elements)
            if let children = node.element {
                for index in 0..<node.elements {
                    guard let child = children[index] else {
                        elements.append(.null)
                        continue
                    }
                    elements.append(RedisReply(copying: child))
                }
            }
            self = .array(elements)
        default:
            self = .error("unsupported reply type \(node.type)")
        }
    }

    private static func text(_ node: redisReply) -> String {
        String(decoding: UnsafeRawBufferPointer(start: node.str, count: node.len), as: UTF8.self)
    }
}
