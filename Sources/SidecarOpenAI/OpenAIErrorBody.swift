import Foundation
import NIOCore

/// OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`.
public struct OpenAIErrorBody: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var message: String
        public var type: String
        public var param: String?
        public var code: String?
    }

    public var error: Detail

    public init(message: String, type: String, code: String?, param: String? = nil) {
        self.error = Detail(message: message, type: type, param: param, code: code)
    }

    /// The encoded JSON body.
    public func encoded() -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data =
            (try? encoder.encode(self)) ?? Data(#"{"error":{"message":"internal error","type":"server_error"}}"#.utf8)
        return ByteBuffer(bytes: data)
    }
}
