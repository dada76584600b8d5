import HTTPTypes
import Hummingbird
import NIOCore
import Prometheus
import SidecarPolicy

/// `/healthz`, `/readyz` and `/metrics`.
enum HealthController {
    static func health() -> Response {
        self.json(.ok, #"{"status":"ok"}"#)
    }

    /// 200 once the listener is up, with each upstream's breaker state; the sidecar stays ready
    /// while breakers are open (it still answers, with fallbacks or clear errors).
    static func readiness(_ readiness: ReadinessState, resilience: ResilienceRegistry) -> Response {
        let upstreams = resilience.breakerStates.map { #""\#($0.upstream)":{"breaker":"\#($0.state.label)"}"# }
        let status = readiness.isReady ? "ready" : "starting"
        let body = #"{"status":"\#(status)","upstreams":{\#(upstreams.joined(separator: ","))}}"#
        return self.json(readiness.isReady ? .ok : .serviceUnavailable, body)
    }

    static func metrics(_ registry: PrometheusCollectorRegistry?) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        var buffer: [UInt8] = []
        registry?.emit(into: &buffer)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
    }

    private static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
