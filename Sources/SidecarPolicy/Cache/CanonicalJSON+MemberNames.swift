extension CanonicalJSON {
    /// Top-level member names to leave out, as bytes (compared with each key as it is read).
    package struct MemberNames: Sendable, ExpressibleByArrayLiteral {
        let names: [[UInt8]]
        /// For the C path: each name as a length byte, then its bytes (`nil` if a name is longer
        /// than 255 bytes).
        let packed: [UInt8]?

        package init(_ names: some Sequence<String>) {
            self.names = names.map { Array($0.utf8) }
            self.packed =
                self.names.allSatisfy({ $0.count <= 255 })
                ? self.names.flatMap { [UInt8($0.count)] + $0 } : nil
        }

        package init(arrayLiteral names: String...) {
            self.init(names)
        }

        /// What the response cache leaves out of its keys: members that change the shape of an
        /// answer, not the answer.
        package static let answerShape: MemberNames = ["stream", "stream_options", "user", "metadata", "store"]
    }
}
