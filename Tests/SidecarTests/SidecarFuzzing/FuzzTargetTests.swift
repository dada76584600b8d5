import Foundation
import SidecarFuzzing
import Testing

/// The fuzz targets' own parts: every checked-in seed holds its target's invariants, and the
/// checks catch what they are meant to catch.
struct FuzzTargetTests {
    @Test(arguments: FuzzTarget.allCases)
    func everySeedHoldsTheInvariants(_ target: FuzzTarget) {
        for seed in FuzzProperty.seeds(target) {
            FuzzProperty.replay(target, seed)
        }
    }

    @Test func numberSpellingsHaveOneValue() {
        var random = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let digits = (0..<(1 + Int(random.next() % 18))).map { _ in UInt8(random.next() % 10) }
            let number = FuzzNumber(
                negative: random.next() % 2 == 0,
                digits: digits.first == 0 && digits.count > 1 ? [1] + digits.dropFirst() : digits,
                exponent: Int(random.next() % 40) - 20
            )
            let spellings = (0..<6).map { FuzzJSONWriter.spell(number, variant: $0) }
            let values = Set(spellings.compactMap { Double($0) })
            #expect(values.count == 1, "\(spellings)")
            for spelling in spellings {
                #expect(FoundationJSON.object(Array("{\"n\":\(spelling)}".utf8)) != nil, "\(spelling)")
            }
        }
    }

    @Test func theResponseReaderRefusesBadFraming() {
        let good = "HTTP/1.1 200 OK\r\nx-fuzz-head: 0\r\nContent-Length: 3\r\n\r\nabc"
        #expect((try? HTTPResponseReader.read(Array(good.utf8)))?.first?.body == Array("abc".utf8))
        let bad = [
            "HTTP/1.1 200 OK\r\nx-fuzz-head: 0\r\nContent-Length: 5\r\n\r\nabc",
            "HTTP/1.1 200 OK\r\nx-fuzz-head: 0\r\n\r\nabc",
            "HTTP/1.1 200 OK\r\nx-fuzz-head: 0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
            "HTTP/1.1 200 OK\r\nx-fuzz-head: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\nHTTP/1.1 200 OK\r\n",
            "HTTP/1.1 200 OK\r\nx-fuzz-head: 0\r\nBad Name: 1\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\nx-fuzz-head: 0\r\nContent-Length: 0\r\n\r\n",
        ]
        for text in bad {
            #expect(throws: FuzzFailure.self, "\(text)") { try HTTPResponseReader.read(Array(text.utf8)) }
        }
    }

    @Test func theRewriteCheckComparesTrees() {
        #expect(FoundationJSON.equal(FoundationJSON.object(Array(#"{"a":[1,true]}"#.utf8)) ?? [:], ["a": [1.0, true]]))
        let number = FoundationJSON.object(Array(#"{"a":1}"#.utf8)) ?? [:]
        let boolean = FoundationJSON.object(Array(#"{"a":true}"#.utf8)) ?? [:]
        #expect(!FoundationJSON.equal(number, boolean))
    }
}
