import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

extension UpstreamConnection {
    /// What a failure to open the connection was (timed out, refused, DNS, TLS) and its detail.
    func connectFailure(_ error: any Error) -> (UpstreamError.Code, String) {
        if let connectError = error as? UpstreamConnectError {
            return (.connectFailed, connectError.detail)
        }
        if let channelError = error as? ChannelError, case .connectTimeout = channelError {
            return (.connectTimeout, "connect timed out")
        }
        var reason = "\(error)"
        if let connectionError = error as? NIOConnectionError {
            if connectionError.connectionErrors.contains(where: {
                if let channelError = $0.error as? ChannelError, case .connectTimeout = channelError { return true }
                return false
            }) {
                return (.connectTimeout, "connect timed out")
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
            return (.connectFailed, "TLS handshake with \(self.endpoint.displayAddress) failed: \(reason)")
        }
        return (.connectFailed, "cannot connect to \(self.endpoint.displayAddress): \(reason)")
    }
}

extension UpstreamConnection {
    /// What a pipeline error means for the bound call (nil: reported when the channel closes).
    func mapError(_ error: any Error, call: UpstreamCall) -> UpstreamError? {
        if let parserError = error as? HTTPParserError {
            self.sawResponseBytes = true
            if case .invalidEOFState = parserError {
                return call.error(
                    .connectionClosed,
                    self.headReceived ? "connection closed mid-response" : "connection closed by upstream"
                )
            }
            return call.error(.other, "malformed response: \(parserError)")
        }
        if let sslError = error as? NIOSSLError, case .uncleanShutdown = sslError {
            return nil
        }
        if self.endpoint.useTLS && !self.tlsHandshakeDone {
            return call.error(.connectFailed, "TLS handshake with \(self.endpoint.displayAddress) failed: \(error)")
        }
        if error is IOError || error is ChannelError {
            return nil  // Reported as "connection closed ..." from channelInactive.
        }
        return call.error(.other, "\(error)")
    }
}
