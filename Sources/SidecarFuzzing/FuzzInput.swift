/// Reads choices from fuzzer bytes, front to back, for the structured targets: each call takes
/// what it needs and an exhausted input answers zeros, so any byte string gives a value and a
/// short input gives a small one.
package struct FuzzInput {
    private let bytes: [UInt8]
    private var index = 0

    package init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    package var isExhausted: Bool { self.index >= self.bytes.count }

    package mutating func byte() -> UInt8 {
        guard self.index < self.bytes.count else { return 0 }
        defer { self.index += 1 }
        return self.bytes[self.index]
    }

    /// A number in `0..<bound` (`bound` at most 65536), from one or two bytes.
    package mutating func int(below bound: Int) -> Int {
        guard bound > 1 else { return 0 }
        if bound <= 256 { return Int(self.byte()) % bound }
        return (Int(self.byte()) << 8 | Int(self.byte())) % bound
    }

    package mutating func bool() -> Bool {
        self.byte() & 1 == 1
    }

    /// True about once in `n` draws (never for an exhausted input).
    package mutating func oneIn(_ n: Int) -> Bool {
        !self.isExhausted && self.int(below: n) == 0
    }

    package mutating func pick<T>(_ choices: [T]) -> T {
        choices[self.int(below: choices.count)]
    }

    /// Eight bytes as a seed (for shuffles the fuzzer should not have to spell out).
    package mutating func seed() -> UInt64 {
        var value: UInt64 = 0
        for _ in 0..<8 { value = value << 8 | UInt64(self.byte()) }
        return value
    }
}
