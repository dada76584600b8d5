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
    /// while breakers are open (it still answers, with fallbacks or clear errors). `breaker` is
    /// the state for chat and completions traffic; `breakers` lists every kind of traffic.
    static func readiness(_ readiness: ReadinessState, resilience: ResilienceRegistry) -> Response {
        let states = resilience.breakerStates
        let upstreams = states.map { upstream in
            let generation = upstream.states.first { $0.traffic == .generation }?.state.label ?? "closed"
            return #""\#(upstream.upstream)":{"breaker":"\#(generation)"}"#
        }
        let breakers = states.map { upstream in
            let each = upstream.states.map { #""\#($0.traffic.rawValue)":"\#($0.state.label)""# }
            return #""\#(upstream.upstream)":{\#(each.joined(separator: ","))}"#
        }
        let status = readiness.isReady ? "ready" : "starting"
        let body =
            #"{"status":"\#(status)","upstreams":{\#(upstreams.joined(separator: ","))},"#
            + #""breakers":{\#(breakers.joined(separator: ","))}}"#
        return self.json(readiness.isReady ? .ok : .serviceUnavailable, body)
    }

    static func metrics(_ registry: PrometheusCollectorRegistry?) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        var buffer: [UInt8] = []
        registry?.emit(into: &buffer)
        return Response(
            status: .ok,
            headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: MetricHelp.adding(to: buffer)))
        )
    }

    private static func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
