import NIOCore
import NIOEmbedded
import Testing

@testable import SidecarCore
@testable import SidecarHTTP

struct CoalescedDeadlineTimerTests {
    private final class Owner {}

    @Test func firesOnceTheDeadlinePassesUnlessCleared() {
        let loop = EmbeddedEventLoop()
        let timer = CoalescedDeadlineTimer(eventLoop: loop)
        let owner = Owner()
        var fired = 0
        timer.set(loop.now + .seconds(5), owner: owner) { fired += 1 }
        loop.advanceTime(by: .seconds(4))
        #expect(fired == 0)
        loop.advanceTime(by: .seconds(1))
        #expect(fired == 1)
        loop.advanceTime(by: .seconds(10))
        #expect(fired == 1)

        timer.set(loop.now + .seconds(5), owner: owner) { fired += 1 }
        timer.clear(owner: owner)
        loop.advanceTime(by: .seconds(10))
        #expect(fired == 1)
    }

    @Test func aLaterDeadlineReusesTheScheduledTaskAndStillFiresOnTime() {
        let loop = EmbeddedEventLoop()
        let timer = CoalescedDeadlineTimer(eventLoop: loop)
        let first = Owner()
        let second = Owner()
        var fired: [String] = []
        timer.set(loop.now + .seconds(5), owner: first) { fired.append("first") }
        loop.advanceTime(by: .seconds(3))
        timer.clear(owner: first)
        // Set at t=3 for t=8: the task scheduled for t=5 fires, finds t=8 ahead and re-arms for it.
        timer.set(loop.now + .seconds(5), owner: second) { fired.append("second") }
        loop.advanceTime(by: .seconds(2))
        #expect(fired.isEmpty)
        loop.advanceTime(by: .seconds(2))
        #expect(fired.isEmpty)
        loop.advanceTime(by: .seconds(1))
        #expect(fired == ["second"])
    }

    @Test func anEarlierDeadlineReschedulesAndAStaleClearIsIgnored() {
        let loop = EmbeddedEventLoop()
        let timer = CoalescedDeadlineTimer(eventLoop: loop)
        let first = Owner()
        let second = Owner()
        var fired: [String] = []
        timer.set(loop.now + .seconds(60), owner: first) { fired.append("first") }
        timer.set(loop.now + .seconds(2), owner: second) { fired.append("second") }
        timer.clear(owner: first)  // late, from the exchange before: must not clear the second deadline
        loop.advanceTime(by: .seconds(2))
        #expect(fired == ["second"])
        timer.set(loop.now + .seconds(1), owner: first) { fired.append("again") }
        timer.stop()
        loop.advanceTime(by: .seconds(120))
        #expect(fired == ["second"])
    }
}
