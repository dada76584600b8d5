/// Where a request body's top-level members are, as byte offsets from its reader index.
package struct RequestBodyLayout: Sendable, Equatable {
    /// The opening brace of the object.
    package var brace: Int
    package var memberCount = 0
    /// The value of `model` / `stream_options`, when present (even `null`).
    package var model: Range<Int>?
    package var streamOptions: Range<Int>?
}
