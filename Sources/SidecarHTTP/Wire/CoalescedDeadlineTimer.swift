import NIOCore

/// A deadline that is nearly always cleared long before it passes (an upstream's first-byte
/// deadline), watched with at most one scheduled event-loop task per client connection.
///
/// ``set(_:owner:_:)`` schedules nothing when the task already scheduled fires no later than
/// the new deadline: when that task fires, it finds the deadline not passed yet and schedules
/// itself again for it. ``clear(owner:)`` cancels nothing. A connection serving request after
/// request with the same timeout so schedules about one task per timeout period instead of a
/// task, a promise and a future per request, and never cancels one (NIO cancels by a linear
/// search of its task queue). Event-loop confined.
package final class CoalescedDeadlineTimer {
    private let eventLoop: any EventLoop
    private var deadline: NIODeadline?
    private var action: (() -> Void)?
    /// Who set the deadline: a late `clear` from an earlier exchange leaves a newer one alone.
    private var owner: ObjectIdentifier?
    private var scheduled: Scheduled<Void>?
    private var firesAt = NIODeadline.distantFuture

    package init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Runs `action` once `deadline` has passed, unless cleared (or set again) before.
    package func set(_ deadline: NIODeadline, owner: AnyObject, _ action: @escaping () -> Void) {
        self.deadline = deadline
        self.action = action
        self.owner = ObjectIdentifier(owner)
        if self.scheduled == nil || self.firesAt > deadline {
            self.schedule(at: deadline)
        }
    }

    /// Forgets the deadline `owner` set, if it is still the current one.
    package func clear(owner: AnyObject) {
        guard self.owner == ObjectIdentifier(owner) else { return }
        self.deadline = nil
        self.action = nil
        self.owner = nil
    }

    /// Forgets any deadline and cancels the scheduled task (the connection is gone).
    package func stop() {
        self.deadline = nil
        self.action = nil
        self.owner = nil
        self.scheduled?.cancel()
        self.scheduled = nil
        self.firesAt = .distantFuture
    }

    private func schedule(at deadline: NIODeadline) {
        self.scheduled?.cancel()
        self.firesAt = deadline
        self.scheduled = self.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            self.fired()
        }
    }

    private func fired() {
        self.scheduled = nil
        self.firesAt = .distantFuture
        guard let deadline = self.deadline, let action = self.action else { return }
        if self.eventLoop.now >= deadline {
            self.deadline = nil
            self.action = nil
            self.owner = nil
            action()
        } else {
            self.schedule(at: deadline)
        }
    }
}
