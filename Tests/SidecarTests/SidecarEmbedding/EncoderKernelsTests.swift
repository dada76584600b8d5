import Foundation
import Testing

@testable import SidecarCore
@testable import SidecarEmbedding

struct EncoderKernelsTests {
    @Test func erfApproximationMatchesLibmWithinAFewUlp() {
        var worst: Float = 0
        for step in -5000...5000 {
            let x = Float(step) / 1000
            let approximate = EncoderKernels.erf(x)
            worst = max(worst, abs(approximate - Foundation.erf(x)))
        }
        #expect(worst < 1e-6)
    }

    @Test func softmaxRowsSumToOneAndPreserveOrder() {
        var scores: [Float] = [1, 2, 3, 1000, 1000, -1000]
        scores.withUnsafeMutableBufferPointer { buffer in
            if let base = buffer.baseAddress {
                EncoderKernels.softmaxRows(base, rows: 2, width: 3)
            }
        }
        #expect(abs(scores[0...2].reduce(0, +) - 1) < 1e-6)
        #expect(scores[0] < scores[1] && scores[1] < scores[2])
        #expect(abs(scores[3] - 0.5) < 1e-6 && scores[5] == 0)
    }
}
