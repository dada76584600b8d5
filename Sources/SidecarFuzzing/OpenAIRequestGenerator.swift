/// Builds a chat or completions request from fuzzer bytes: mostly well-typed members the
/// sidecar reads (`model`, `messages`, `stream_options`...), sometimes a wrong type, a `null`,
/// a repeated key or an escaped key, among members it does not read. ``FuzzJSONWriter`` then
/// spells it out, so the checks see deep, valid requests rather than mostly junk.
package enum OpenAIRequestGenerator {
    static let roles = ["system", "user", "assistant", "tool", "developer", ""]
    static let models = ["gpt-4o", "llama3.2:3b", "auto", "pin/gpt-4o", "", "m\u{e9}\u{1F600}"]
    static let otherKeys = ["temperature", "n", "top_p", "user", "seed", "stop", "metadata", "x", "model2", "Model"]

    package static func request(_ input: inout FuzzInput) -> FuzzJSON {
        var members: [FuzzJSON.Member] = []
        let memberCount = input.int(below: 9)
        for _ in 0..<memberCount {
            let key = Self.key(&input)
            members.append(FuzzJSON.Member(key: key, value: Self.value(for: key, &input)))
        }
        return .object(members)
    }

    /// A member name: mostly the ones the sidecar reads.
    private static func key(_ input: inout FuzzInput) -> String {
        switch input.int(below: 16) {
        case 0...2: return "model"
        case 3...5: return "messages"
        case 6: return "prompt"
        case 7: return "stream"
        case 8: return "stream_options"
        case 9: return input.bool() ? "tools" : "functions"
        case 10: return input.bool() ? "max_tokens" : "max_completion_tokens"
        case 11, 12: return input.pick(Self.otherKeys)
        default: return FuzzJSON.string(&input, maxLength: 6)
        }
    }

    /// A value for `key`: its usual type, or (one time in eight) anything.
    private static func value(for key: String, _ input: inout FuzzInput) -> FuzzJSON {
        if input.oneIn(8) { return FuzzJSON.value(&input, depth: 2) }
        switch key {
        case "model":
            return .string(input.bool() ? input.pick(Self.models) : FuzzJSON.string(&input))
        case "messages":
            let count = input.int(below: 4)
            return .array((0..<count).map { _ in Self.message(&input) })
        case "prompt":
            switch input.int(below: 4) {
            case 0: return .string(FuzzJSON.string(&input, maxLength: 20))
            case 1: return .array((0..<input.int(below: 3)).map { _ in .string(FuzzJSON.string(&input)) })
            case 2: return .array((0..<input.int(below: 4)).map { _ in .number(FuzzNumber(&input)) })
            default: return FuzzJSON.value(&input, depth: 2)
            }
        case "stream":
            return .bool(input.bool())
        case "stream_options":
            var options: [FuzzJSON.Member] = []
            if input.bool() { options.append(FuzzJSON.Member(key: "include_usage", value: .bool(input.bool()))) }
            if input.oneIn(3) { options.append(FuzzJSON.Member(key: "other", value: FuzzJSON.value(&input, depth: 1))) }
            return .object(options)
        case "tools", "functions":
            let count = input.int(below: 3)
            return .array((0..<count).map { _ in FuzzJSON.value(&input, depth: 2) })
        case "max_tokens", "max_completion_tokens":
            return .number(FuzzNumber(&input))
        default:
            return FuzzJSON.value(&input, depth: 2)
        }
    }

    private static func message(_ input: inout FuzzInput) -> FuzzJSON {
        var members: [FuzzJSON.Member] = [FuzzJSON.Member(key: "role", value: .string(input.pick(Self.roles)))]
        switch input.int(below: 4) {
        case 0: break
        case 1: members.append(FuzzJSON.Member(key: "content", value: .null))
        case 2: members.append(FuzzJSON.Member(key: "content", value: .string(FuzzJSON.string(&input, maxLength: 24))))
        default:
            let parts: [FuzzJSON] = (0..<input.int(below: 3)).map { _ in
                input.bool()
                    ? .object([
                        FuzzJSON.Member(key: "type", value: .string("text")),
                        FuzzJSON.Member(key: "text", value: .string(FuzzJSON.string(&input))),
                    ])
                    : .object([
                        FuzzJSON.Member(key: "type", value: .string("image_url")),
                        FuzzJSON.Member(key: "image_url", value: .object([])),
                    ])
            }
            members.append(FuzzJSON.Member(key: "content", value: .array(parts)))
        }
        if input.oneIn(4) { members.append(FuzzJSON.Member(key: "name", value: .string(FuzzJSON.string(&input)))) }
        if input.oneIn(8) { members.swapAt(0, members.count - 1) }
        return .object(members)
    }
}
