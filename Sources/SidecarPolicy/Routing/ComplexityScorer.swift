import SidecarOpenAI

/// What a scorer sees of a request: its messages (or legacy prompt) and a few request traits.
public struct ScoringInput: Sendable {
    public struct Message: Sendable {
        public var role: String
        public var text: String
        /// Images, audio and other non-text parts in the message.
        public var nonTextParts: Int

        public init(role: String, text: String, nonTextParts: Int = 0) {
            self.role = role
            self.text = text
            self.nonTextParts = nonTextParts
        }
    }

    public var messages: [Message]
    public var toolCount: Int
    public var maxTokens: Int?

    public init(messages: [Message], toolCount: Int = 0, maxTokens: Int? = nil) {
        self.messages = messages
        self.toolCount = toolCount
        self.maxTokens = maxTokens
    }

    /// A single user prompt, as the `route` command and the legacy completions API give it.
    public init(prompt: String) {
        self.init(messages: [Message(role: "user", text: prompt)])
    }

    /// The index of the last user message (else the last message): the turn a conversation is
    /// scored by first, and the text the learned router embeds.
    public var lastUserIndex: Int? {
        self.messages.lastIndex { $0.role == "user" } ?? (self.messages.isEmpty ? nil : self.messages.count - 1)
    }

    /// The text the learned router embeds: the last user message.
    public var lastUserText: String {
        self.lastUserIndex.map { self.messages[$0].text } ?? ""
    }
}

/// A complexity score in 0...1 with the named features behind it.
public struct ComplexityScore: Sendable, Equatable {
    /// Which scorer decided the value.
    public enum Router: String, Sendable, Equatable, CaseIterable {
        /// The hand-set heuristic (no learned router, or no embedding in time).
        case heuristic
        /// The learned router over the prompt's embedding (`X-Sidecar-Router: learned`).
        case learned
    }

    public var value: Double
    public var router: Router = .heuristic
    /// The heuristic's own score when another scale or scorer gave `value`; listed as the
    /// feature `heuristic`.
    public var heuristicValue: Double?
    /// Feature name and value, in a stable order (for logs, `route` output and `/sidecar/route`).
    ///
    /// Built when read: the request path reads only `value`, so `HeuristicComplexityScorer`
    /// hands over its values as they are rather than allocating this list for every request.
    public var features: [(name: String, value: Double)] {
        get {
            var list: [(name: String, value: Double)]
            switch self.storage {
            case .list(let features): list = features
            case .heuristic(let features): list = features.list
            }
            if let heuristicValue { list.append(("heuristic", heuristicValue)) }
            return list
        }
        set { self.storage = .list(newValue) }
    }

    private var storage: Features

    /// The features as given, or the heuristic scorer's values with their names left implicit.
    private enum Features: Sendable {
        case list([(name: String, value: Double)])
        case heuristic(HeuristicFeatures)
    }

    public init(value: Double, features: [(name: String, value: Double)]) {
        self.value = value.isFinite ? min(max(value, 0), 1) : 0
        self.storage = .list(features)
    }

    package init(value: Double, features: HeuristicFeatures) {
        self.value = value.isFinite ? min(max(value, 0), 1) : 0
        self.storage = .heuristic(features)
    }

    public static func == (lhs: ComplexityScore, rhs: ComplexityScore) -> Bool {
        lhs.value == rhs.value && lhs.router == rhs.router
            && lhs.features.elementsEqual(rhs.features) { $0 == $1 }
    }
}

/// Scores how hard a request is: 0 is trivial, 1 needs the strongest model.
///
/// Implementations must be cheap (microseconds), pure and thread-safe: the pipeline calls
/// them for every chat and completions request.
public protocol ComplexityScorer: Sendable {
    func score(_ input: ScoringInput) -> ComplexityScore
}
