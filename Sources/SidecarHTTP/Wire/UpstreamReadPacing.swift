import NIOCore

/// How one call's answer is read: paused for back-pressure (a read the pipeline asks for is held
/// until resumed) and watched for silence (the idle timeout, which does not run while paused).
/// Shared by ``UpstreamConnection`` (HTTP/1.1) and ``UpstreamHTTP2Stream``; the owner schedules
/// the timer itself, so that its closure reaches the owner.
struct UpstreamReadPacing {
    private(set) var isPaused = false
    private var readPending = false
    /// When the answer's last bytes arrived (or the call started).
    var lastReadAt = NIODeadline.uptimeNanoseconds(0)
    var timer: Scheduled<Void>?

    /// A call starts reading: paused as its caller asked, silence counted from now.
    mutating func start(paused: Bool) {
        self.isPaused = paused
        self.lastReadAt = .now()
    }

    /// The pipeline asks to read: held while paused with a call reading.
    mutating func read(context: ChannelHandlerContext, callIsReading: Bool) {
        if self.isPaused && callIsReading {
            self.readPending = true
        } else {
            context.read()
        }
    }

    /// Pauses or resumes. Returns true when it resumed (the owner re-arms its timer): a held
    /// read is passed on, and silence counts from now.
    mutating func setPaused(_ paused: Bool, context: ChannelHandlerContext?) -> Bool {
        guard self.isPaused != paused else { return false }
        self.isPaused = paused
        guard !paused, let context else { return false }
        self.lastReadAt = .now()
        if self.readPending {
            self.readPending = false
            context.read()
        }
        return true
    }

    /// When a timer for `timeout` should fire; nil while one is scheduled.
    func timerDeadline(timeout: TimeAmount) -> NIODeadline? {
        self.timer == nil ? self.lastReadAt + timeout : nil
    }

    /// Whether the answer has been silent for `timeout`.
    func isSilent(for timeout: TimeAmount) -> Bool {
        NIODeadline.now() >= self.lastReadAt + timeout
    }

    mutating func cancelTimer() {
        self.timer?.cancel()
        self.timer = nil
    }
}
