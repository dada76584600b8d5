import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A loopback port with nothing listening: a socket bound to it and never listening keeps it
/// for the test process (connecting is refused, and no other test's listener can get the port,
/// as one closed at once could).
func closedPort() throws -> Int {
    try loopbackSocket(listeningWithBacklog: nil).port
}

/// A TCP socket bound to a free loopback port, listening with `backlog` unless it is `nil`;
/// never accepting. The caller owns the descriptor.
func loopbackSocket(listeningWithBacklog backlog: Int32?) throws -> (descriptor: Int32, port: Int) {
    let (descriptor, bound) = try tcpSocket(loopbackPort: 0)
    var address = bound
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ready = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
            bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
                && (backlog.map { listen(descriptor, $0) == 0 } ?? true)
        }
    }
    try #require(ready)
    return (descriptor, Int(UInt16(bigEndian: address.sin_port)))
}

/// A TCP socket connected (blocking) to a loopback port: a listener that never accepts holds it
/// in its queue. The caller owns the descriptor.
func connectedLoopbackSocket(to port: Int) throws -> Int32 {
    let (descriptor, peer) = try tcpSocket(loopbackPort: port)
    var address = peer
    let connected = withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
    try #require(connected)
    return descriptor
}

/// A new TCP socket, and the loopback address with `port` (0: the kernel picks one on bind).
private func tcpSocket(loopbackPort port: Int) throws -> (Int32, sockaddr_in) {
    #if canImport(Glibc)
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
    let descriptor = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    try #require(descriptor >= 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return (descriptor, address)
}

/// Whether a TCP connection to a loopback port is accepted by the kernel (something listens).
func loopbackConnects(to port: Int) throws -> Bool {
    let (descriptor, peer) = try tcpSocket(loopbackPort: port)
    defer { close(descriptor) }
    var address = peer
    return withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}
