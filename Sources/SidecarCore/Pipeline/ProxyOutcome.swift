import HTTPTypes
import Hummingbird

/// What the pipeline answers: status, headers and a body that may still be streaming.
public struct ProxyOutcome: Sendable {
    public var status: HTTPResponse.Status
    public var headers: HTTPFields
    public var body: ResponseBody

    public init(status: HTTPResponse.Status, headers: HTTPFields, body: ResponseBody) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    var response: Response {
        Response(status: self.status, headers: self.headers, body: self.body)
    }
}
