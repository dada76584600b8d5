import Foundation
import Testing

@testable import SidecarCore

/// The journal of recent routing decisions that `POST /sidecar/feedback` rates.
struct RouteJournalTests {
    static func decision(_ model: String) -> RouteJournal.Decision {
        .init(model: model, tier: 0, score: 0.25, router: "heuristic", app: "default")
    }

    /// Ids are packed into the key up to 32 bytes and kept as strings beyond: every one is
    /// found as it was given, and ids that differ anywhere (a last byte, a trailing NUL, one
    /// byte more) are never confused.
    @Test func findsEveryIdExactlyWhateverItsLength() {
        let journal = RouteJournal(capacity: 1_000)
        var ids: [String] = []
        for length in 0...40 {
            let id = String((0..<length).map { Character(Unicode.Scalar(UInt8(97 + $0 % 26))) })
            ids.append(id)
            ids.append(id + "\u{0}")
            if length > 0 { ids.append(String(id.dropLast()) + "Z") }
        }
        ids.append("é-ü-🙂-中文")
        for (number, id) in ids.enumerated() { journal.remember(id, Self.decision("m\(number)")) }
        for (number, id) in ids.enumerated() {
            #expect(journal.decision(id) == Self.decision("m\(number)"), "id \(id.debugDescription)")
        }
        #expect(journal.decision("not remembered") == nil)
    }

    @Test func forgetsTheOldestBeyondItsCapacity() {
        let journal = RouteJournal(capacity: 8)
        for number in 0..<9 { journal.remember("request-\(number)", Self.decision("m")) }
        // A small journal is one ring of 8: the oldest goes, the 8 newest stay.
        #expect(journal.decision("request-0") == nil)
        for number in 1..<9 { #expect(journal.decision("request-\(number)") == Self.decision("m")) }
    }

    /// The journal keeps about as many decisions as configured, whichever threads write them
    /// (its parts are chosen by request id; parts chosen by thread kept only the writing
    /// threads' share: one thread filled 1/8 of it).
    @Test func oneThreadFillsTheWholeCapacity() {
        let capacity = 8_192
        let journal = RouteJournal(capacity: capacity)
        // Ids like the sidecar's own: 32 hex digits.
        let ids = (0..<capacity).map {
            String(repeating: "0", count: 16) + String(format: "%016llx", UInt64($0) &* 0x9E37_79B9)
        }
        for id in ids { journal.remember(id, Self.decision("m")) }
        let kept = ids.filter { journal.decision($0) != nil }.count
        #expect(kept >= capacity * 9 / 10, "kept \(kept) of \(capacity)")
        // The newest are always kept (each part drops its oldest first).
        for id in ids.suffix(200) { #expect(journal.decision(id) != nil) }
    }

    /// A client's own id used twice keeps the newer decision, and the older one's place in the
    /// ring, when its turn comes, does not take the newer with it.
    @Test func aRepeatedIdKeepsTheNewerDecision() async throws {
        let journal = RouteJournal(capacity: 4)
        journal.remember("same", Self.decision("first"))
        journal.remember("other", Self.decision("m"))
        journal.remember("same", Self.decision("second"))
        #expect(journal.decision("same") == Self.decision("second"))
        #expect(try await journal.rate("same", rating: 0.5) == Self.decision("second"))
        // Two more: the ring's first slot (the older "same") is reused.
        journal.remember("a", Self.decision("m"))
        journal.remember("b", Self.decision("m"))
        #expect(journal.decision("same") == Self.decision("second"))
        #expect(journal.decision("other") == Self.decision("m"))
    }

    @Test func aRatingNeedsARememberedRequest() async throws {
        let journal = RouteJournal(capacity: 100)
        journal.remember("0123456789abcdef0123456789abcdef", Self.decision("small"))
        #expect(try await journal.rate("0123456789abcdef0123456789abcdef", rating: 1) == Self.decision("small"))
        await #expect(throws: RouteJournal.FeedbackError.unknownRequest) {
            try await journal.rate("0123456789abcdef0123456789abcdeF", rating: 1)
        }
    }
}
