// The libFuzzer driver for the targets in SidecarFuzzing, built by scripts/fuzz.sh:
//   sidecar-fuzz <target> [libFuzzer flags and corpus directories]
// The target may instead be named by SIDECAR_FUZZ_TARGET (libFuzzer's child processes inherit
// it). An invariant that does not hold aborts, so libFuzzer saves the input as a crash.
import CFuzzerDriver
import SidecarFuzzing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

enum Driver {
    nonisolated(unsafe) static var target = FuzzTarget.serverSentEvents

    static func main() -> Int32 {
        var arguments = CommandLine.arguments
        var chosen = getenv("SIDECAR_FUZZ_TARGET").flatMap { FuzzTarget(rawValue: String(cString: $0)) }
        if arguments.count > 1, let named = FuzzTarget(rawValue: arguments[1]) {
            chosen = named
            arguments.remove(at: 1)
        }
        guard let chosen else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: " | ")
            Self.printError("usage: sidecar-fuzz <\(names)> [libFuzzer flags] [corpus...]\n")
            return 2
        }
        self.target = chosen
        if !arguments.contains(where: { $0.hasPrefix("-max_len=") }) {
            arguments.append("-max_len=\(chosen.maximumLength)")
        }
        setenv("SIDECAR_FUZZ_TARGET", chosen.rawValue, 1)
        var argc = Int32(arguments.count)
        var pointers: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        return pointers.withUnsafeMutableBufferPointer { buffer in
            var argv = buffer.baseAddress
            return LLVMFuzzerRunDriver(&argc, &argv) { data, size in Driver.runOne(data, size) }
        }
    }

    /// One input through the chosen target; a broken invariant aborts.
    static func runOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        let input = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
        do {
            try Driver.target.run(input)
        } catch {
            Driver.printError("\n== invariant violated: \(error)\n")
            abort()
        }
        return 0
    }

    /// To standard error, unbuffered (before an abort).
    static func printError(_ text: String) {
        var text = text
        text.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
    }
}

/// libFuzzer's own `main` (linked in, unused: ours runs the driver) refers to this entry point.
@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    Driver.runOne(data, size)
}

exit(Driver.main())
