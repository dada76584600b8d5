import NIOCore
import NIOPosix
import NIOSSL

extension UpstreamConnection {
    /// A failure to open the connection, as the call reports it: timed out, refused, DNS, TLS.
    package func connectError(_ error: any Error, call: UpstreamCall) -> UpstreamError {
        if let connectError = error as? UpstreamConnectError {
            return call.error(.connectFailed, connectError.detail)
        }
        if let channelError = error as? ChannelError, case .connectTimeout = channelError {
            return call.error(.connectTimeout, "connect timed out")
        }
        var reason = "\(error)"
        if let connectionError = error as? NIOConnectionError {
            if connectionError.connectionErrors.contains(where: {
                if let channelError = $0.error as? ChannelError, case .connectTimeout = channelError { return true }
                return false
            }) {
                return call.error(.connectTimeout, "connect timed out")
            }
            if let first = connectionError.connectionErrors.first {
                reason = "\(first.error)"
            } else if let dnsError = connectionError.dnsAError ?? connectionError.dnsAAAAError {
                reason = "\(dnsError)"
            } else {
                reason = "no address found"
            }
        }
        if error is NIOSSLError || error is BoringSSLError {
            return call.error(.connectFailed, "TLS handshake with \(self.endpoint.displayAddress) failed: \(reason)")
        }
        return call.error(.connectFailed, "cannot connect to \(self.endpoint.displayAddress): \(reason)")
    }
}
