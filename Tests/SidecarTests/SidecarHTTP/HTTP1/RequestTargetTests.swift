import Testing

@testable import SidecarHTTP

struct RequestTargetTests {
    @Test(arguments: [
        "/", "/v1", "/v1/", "/v1/chat/completions", "/v1/models/ft:gpt-4o:org:custom", "/api/tags",
        "/v1/files?limit=2&after=file-abc", "/v1/models/gpt-4o?x=a@b/c", "/healthz", "/sidecar/",
        "/v1/models/llama%20three", "/v1/...x/a.b/..c", "/v1/items;v=1", "/v1/a~b_c-d.e!$&'()*+,=:",
    ])
    func plainPathsAreAccepted(_ target: String) {
        #expect(RequestTarget.problem(target) == nil)
    }

    @Test(arguments: [
        // Not origin-form: absolute-form, authority-form, asterisk-form, empty, relative.
        "http://127.0.0.1:9/v1/models", "https://evil.example/v1/chat/completions", "evil.example:443",
        "127.0.0.1:9", "*", "", "v1/models", "?x=1",
        // Network-path references and empty segments.
        "//evil.example:9/v1/models", "//127.0.0.1:9", "/v1//models", "/api//x",
        // Dot segments.
        "/..", "/.", "/v1/..", "/v1/../..", "/v1/../../etc/passwd", "/v1/./models", "/api/../v1/models",
        "/v1/models/..?x=1",
        // Percent-encoded dots, slashes, backslashes and "@", any case, and broken escapes.
        "/api/%2e%2e/", "/api/%2E%2E/x", "/v1/%2e/x", "/v1/.%2e/x", "/v1/%2fevil", "/v1/%2F%2Fevil",
        "/v1/%5c..%5c", "/v1/%5C", "/v1/models%40127.0.0.1:9", "/v1/%", "/v1/%4", "/v1/%zz", "/v1/%00",
        "/v1/%0d%0aHost:%20evil", "/v1/%7F",
        // "@", backslashes, controls, spaces, non-ASCII in the path; bad bytes in the query.
        "/v1/models@127.0.0.1:9", "/@evil.example/", "/v1\\..\\admin", "/\\\\evil/x", "/v1/a\tb", "/v1/a b",
        "/v1/a\u{7F}", "/v1/mod\u{E9}le", "/v1/a\"b", "/v1/a<b>", "/v1/a#frag", "/v1/a{b}", "/v1/a|b", "/v1/a^b",
        "/v1/models?x=\\y", "/v1/models?x=a b", "/v1/models?x=#y", "/v1/models?x=\u{1}", "/v1/models?x=\u{E9}",
    ])
    func targetsThatCouldLeaveTheUpstreamsBasePathAreRefused(_ target: String) {
        #expect(RequestTarget.problem(target) != nil, "\(target.debugDescription) was accepted")
    }

    @Test func theReasonNamesTheProblem() {
        #expect(RequestTarget.problem("http://evil/x")?.contains("origin-form") == true)
        #expect(RequestTarget.problem("/v1/../x")?.contains("dot segment") == true)
        #expect(RequestTarget.problem("//evil/x")?.contains("empty segment") == true)
        #expect(RequestTarget.problem("/v1/%2e%2e")?.contains("percent-encoded dot") == true)
        #expect(RequestTarget.problem("/v1/a@b")?.contains("\"@\"") == true)
        #expect(RequestTarget.problem("/v1/a\\b")?.contains("backslash") == true)
    }
}
