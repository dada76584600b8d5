import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// The C calls by their module (a `bind` inside a type would name NIO's methods).
#if canImport(Glibc)
private let systemBind = Glibc.bind
private let systemConnect = Glibc.connect
#elseif canImport(Musl)
private let systemBind = Musl.bind
private let systemConnect = Musl.connect
#else
private let systemBind = Darwin.bind
private let systemConnect = Darwin.connect
#endif

/// The client-facing listener: one listening socket per event loop (`SO_REUSEPORT`, the kernel
/// spreads new connections over them), each connection served on the loop that accepted it.
///
/// With one listener for every loop (as Hummingbird's server has), each new connection crossed
/// between loops three times before its first byte was read (accepted on one, set up on another,
/// handed back, registered there): three wakeups of an idle thread, about half a millisecond
/// on a VM, paid by every client that sends as soon as it connects. Here a connection never
/// leaves its loop. A Unix socket has one listener (no `SO_REUSEPORT`).
///
/// Graceful shutdown: the listening sockets close at once (new connections are refused), every
/// open connection gets `ChannelShouldQuiesceEvent` (``SidecarConnectionHandler`` finishes the
/// request in flight, then closes; an idle one closes now), and `run()` returns once they have
/// all closed.
final class SidecarListener: Service, Sendable {
    private let address: ListenAddress
    private let group: any EventLoopGroup
    private let child: SidecarChildChannel
    private let onRunning: @Sendable (any Channel) async -> Void
    private let onFailure: @Sendable () -> Void
    private let logger: Logger
    /// Pending connections per listening socket (Hummingbird's default).
    static let backlog: Int32 = 256

    init(
        address: ListenAddress,
        group: any EventLoopGroup,
        child: SidecarChildChannel,
        logger: Logger,
        onFailure: @escaping @Sendable () -> Void = {},
        onRunning: @escaping @Sendable (any Channel) async -> Void
    ) {
        self.onFailure = onFailure
        self.address = address
        self.group = group
        self.child = child
        self.logger = logger
        self.onRunning = onRunning
    }

    func run() async throws {
        let listeners: [(listener: Listener, channel: any Channel)]
        do {
            listeners = try await self.bind()
        } catch {
            self.onFailure()
            throw error
        }
        await self.onRunning(listeners[0].channel)
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                for listener in listeners { try? await listener.listener.drained.get() }
            } onGracefulShutdown: {
                for listener in listeners { listener.listener.shutDown() }
            }
        } onCancel: {
            for listener in listeners { listener.listener.shutDown() }
        }
    }

    /// One listener per loop (the first picks the port when `port` is 0; the others share it).
    private func bind() async throws -> [(listener: Listener, channel: any Channel)] {
        let loops: [any EventLoop] =
            self.address.socketPath == nil ? Array(self.group.makeIterator()) : [self.group.next()]
        var listeners: [(listener: Listener, channel: any Channel)] = []
        var port = self.address.port
        if self.address.socketPath == nil, loops.count > 1, port != 0 {
            // `SO_REUSEPORT` would let this process share a port another one listens on with it
            // too (an old sidecar still running): bind it once without, so that such a port is
            // refused as in use, as it would be without the option.
            try Self.checkPortIsFree(host: self.address.host, port: port)
        }
        if let path = self.address.socketPath {
            // Binding removes the file at the path: only a stale one (a crashed sidecar's).
            try Self.checkSocketPathIsFree(path)
        }
        do {
            for loop in loops {
                let listener = Listener(eventLoop: loop)
                let child = self.child
                let logger = self.logger
                var bootstrap = ServerBootstrap(group: loop)
                    .serverChannelOption(.backlog, value: Self.backlog)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelOption(.allowRemoteHalfClosure, value: true)
                    .childChannelInitializer { channel in
                        listener.track(channel)
                        return child.setup(channel: channel, logger: logger).map { listener.setUp(channel) }
                    }
                let channel: any Channel
                if let path = self.address.socketPath {
                    channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
                        .get()
                } else {
                    if loops.count > 1 {
                        bootstrap = bootstrap.serverChannelOption(
                            .socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)),
                            value: 1
                        )
                    }
                    channel = try await bootstrap.bind(host: self.address.host, port: port).get()
                    port = channel.localAddress?.port ?? port
                }
                listener.listening(on: channel)
                listeners.append((listener, channel))
            }
        } catch {
            for listener in listeners { listener.listener.shutDown() }
            throw error
        }
        let bound = self.address.socketPath ?? "\(self.address.host):\(port)"
        self.logger.info("Server started and listening on \(bound)", metadata: ["listeners": "\(listeners.count)"])
        return listeners
    }

    /// Throws as `bind` does when another socket holds `host:port` (an old sidecar listening on
    /// it), by binding a socket there without `SO_REUSEPORT` and closing it. The socket never
    /// listens: a listening probe accepted a client that connected in that moment (a restart
    /// with clients retrying) and left it unanswered, its connection open, until the client gave
    /// up. `whileBound` runs while the socket is bound (tests connect to the port then).
    static func checkPortIsFree(host: String, port: Int, whileBound: () throws -> Void = {}) throws {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let descriptor = try Self.streamSocket(address.protocol.rawValue)
        defer { close(descriptor) }
        var on: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        let bound = address.withSockAddr { pointer, size in systemBind(descriptor, pointer, socklen_t(size)) }
        guard bound == 0 else { throw IOError(errnoCode: errno, reason: "bind(\(host):\(port))") }
        try whileBound()
    }

    /// Throws `EADDRINUSE` when a process listens on the Unix socket at `path` (a connection to
    /// it is accepted, or waits in its full backlog). Binding there removes the file first, so
    /// without this check a second sidecar took the path from a running one, which went on
    /// running unreachable; a TCP port another process listens on is refused the same way. A
    /// socket file nothing listens on (a crashed sidecar's) is left for the bind to replace.
    static func checkSocketPathIsFree(_ path: String) throws {
        let address = try SocketAddress(unixDomainSocketPath: path)
        let descriptor = try Self.streamSocket(AF_UNIX)
        defer { close(descriptor) }
        _ = fcntl(descriptor, F_SETFL, O_NONBLOCK)
        let connected = address.withSockAddr { pointer, size in systemConnect(descriptor, pointer, socklen_t(size)) }
        let failure = errno
        if connected == 0 || failure == EAGAIN || failure == EINPROGRESS {
            throw IOError(errnoCode: EADDRINUSE, reason: "another process listens on unix:\(path)")
        }
    }

    /// A new stream socket of `family`; the caller closes it.
    private static func streamSocket(_ family: Int32) throws -> Int32 {
        #if canImport(Glibc)
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(family, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        return descriptor
    }

    /// One listening socket and the connections it accepted, all on one event loop.
    private final class Listener: Sendable {
        private let eventLoop: any EventLoop
        private let state: NIOLoopBoundBox<State>
        private let drainedPromise: EventLoopPromise<Void>
        private let shuttingDown = Atomic<Bool>(false)

        private struct State {
            var channel: (any Channel)?
            var open: [ObjectIdentifier: any Channel] = [:]
            var draining = false
            var drained = false
        }

        init(eventLoop: any EventLoop) {
            self.eventLoop = eventLoop
            self.state = NIOLoopBoundBox.makeBoxSendingValue(State(), eventLoop: eventLoop)
            self.drainedPromise = eventLoop.makePromise(of: Void.self)
        }

        /// Completes when the listener has shut down and every connection it accepted has closed.
        var drained: EventLoopFuture<Void> { self.drainedPromise.futureResult }

        func listening(on channel: any Channel) {
            channel.eventLoop.execute { self.state.value.channel = channel }
            // A listening socket that closes on its own (an error) drains its connections too.
            channel.closeFuture.whenComplete { _ in self.shutDown() }
        }

        /// Called on the loop for each accepted connection, before its setup.
        func track(_ channel: any Channel) {
            let id = ObjectIdentifier(channel)
            self.state.value.open[id] = channel
            channel.closeFuture.whenComplete { _ in
                self.state.value.open[id] = nil
                self.drainedIfIdle()
            }
        }

        /// Called on the loop once a connection's handlers are in place: one accepted while the
        /// listener was shutting down is asked to finish at once.
        func setUp(_ channel: any Channel) {
            if self.state.value.draining {
                channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            }
        }

        /// Stops accepting, asks each connection to finish, and completes ``drained`` when all
        /// have closed. Once; from any thread.
        func shutDown() {
            guard !self.shuttingDown.exchange(true, ordering: .relaxed) else { return }
            self.eventLoop.execute {
                self.state.value.draining = true
                self.state.value.channel?.close(promise: nil)
                for channel in self.state.value.open.values {
                    channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
                }
                self.drainedIfIdle()
            }
        }

        private func drainedIfIdle() {
            guard self.state.value.draining, self.state.value.open.isEmpty, !self.state.value.drained else { return }
            self.state.value.drained = true
            self.drainedPromise.succeed(())
        }
    }
}
