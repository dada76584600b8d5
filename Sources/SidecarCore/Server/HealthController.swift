import HTTPTypes
import Hummingbird
import NIOCore
import Prometheus

/// `/healthz`, `/readyz` and `/metrics`.
enum HealthController {
    static func health() -> Response {
        self.json(.ok, #"{"status":"ok"}"#)
    }

    static func readiness(_ readiness: ReadinessState) -> Response {
        readiness.isReady
            ? self.json(.ok, #"{"status":"ready"}"#) : self.json(.serviceUnavailable, #"{"status":"starting"}"#)
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
