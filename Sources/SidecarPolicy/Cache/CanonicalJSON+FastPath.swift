import CSidecarKernels

extension CanonicalJSON {
    /// The C fast path (`sidecar_canonical_json`): the same result as
    /// ``canonicalizeInSwift(_:dropping:maskingPrompt:)`` on the documents it accepts (keys
    /// without escapes, numbers whose canonical form needs no `Double`, at most 32 levels deep:
    /// nearly every request), `nil` on the others.
    package static func canonicalizeInC(
        _ bytes: UnsafeBufferPointer<UInt8>,
        dropping: MemberNames = [],
        maskingPrompt: Bool = false
    ) -> Result? {
        guard let names = dropping.packed, let input = bytes.baseAddress else { return nil }
        let capacity = bytes.count + 1
        var outcome = sidecar_canonical_json_result()
        var status: Int32 = -1
        // The prompt's room only when it may be masked (the C side writes it only then).
        var prompt = [UInt8](repeating: 0, count: maskingPrompt ? capacity : 0)
        let context = [UInt8](unsafeUninitializedCapacity: capacity) { output, initialized in
            status = names.withUnsafeBufferPointer { names in
                prompt.withUnsafeMutableBufferPointer { promptOutput in
                    sidecar_canonical_json(
                        input,
                        bytes.count,
                        names.baseAddress,
                        names.count,
                        maskingPrompt ? 1 : 0,
                        output.baseAddress,
                        capacity,
                        maskingPrompt ? promptOutput.baseAddress : nil,
                        &outcome
                    )
                }
            }
            initialized = status == 1 ? outcome.output_length : 0
        }
        guard status == 1 else { return nil }
        prompt.removeLast(prompt.count - outcome.prompt_length)
        func number(_ start: Int, _ end: Int) -> Double? {
            end > 0 ? CanonicalJSON.number(UnsafeBufferPointer(rebasing: bytes[start..<end])) : nil
        }
        return Result(
            context: context,
            prompt: prompt,
            maskedPrompt: outcome.masked != 0,
            n: number(outcome.n_start, outcome.n_end),
            temperature: number(outcome.temperature_start, outcome.temperature_end)
        )
    }
}
