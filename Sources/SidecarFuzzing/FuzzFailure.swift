/// An invariant a fuzz target checks did not hold: the fuzz driver aborts on it (libFuzzer then
/// saves the input as a crash), the unit tests record it as an issue.
package struct FuzzFailure: Error, CustomStringConvertible {
    package var target: String
    package var message: String

    package init(_ target: String, _ message: String) {
        self.target = target
        self.message = message
    }

    package var description: String { "\(self.target): \(self.message)" }
}
