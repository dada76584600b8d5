/// Token counts guessed from text, for pricing an answer whose upstream reported no `usage`:
/// about four bytes of text per token (OpenAI's rule of thumb for English), plus the few tokens
/// each chat message costs in framing (role, separators) and the reply's priming. An estimate,
/// and always said to be one: a cost the sidecar does not know never reads as zero.
public enum TokenEstimate {
    /// Tokens for this many bytes of text (rounded up; 0 for none).
    public static func tokens(forBytes count: Int) -> Int {
        count <= 0 ? 0 : (count + 3) / 4
    }

    /// The prompt of a chat: every message's text plus 4 tokens of framing each, plus 3 for the
    /// reply's priming; a legacy prompt (one text, no framing) when `messageCount` is 0.
    public static func promptTokens(textBytes: Int, messageCount: Int) -> Int {
        messageCount == 0 ? self.tokens(forBytes: textBytes) : self.tokens(forBytes: textBytes) + 4 * messageCount + 3
    }
}
