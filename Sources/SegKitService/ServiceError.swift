import Foundation
import Hummingbird

/// A request the service refuses: its HTTP status and a JSON body
/// `{"error": message, "cap": name}` naming what was wrong and, for a request past one
/// of the service's limits, the limit (its flag's name without dashes), so that a client
/// and the page can say it in words.
public struct ServiceError: HTTPResponseError, CustomStringConvertible {
  public let status: HTTPResponse.Status
  public let message: String
  /// The limit the request went past (e.g. "max-body-bytes"), if any.
  public let cap: String?
  /// The error's kind in /metrics (bad_request, too_large, not_found, …).
  public var kind: String {
    switch status.code {
    case 401: return "unauthorized"
    case 404: return "not_found"
    case 409: return "conflict"
    case 413: return "too_large"
    case 422: return "unprocessable"
    case 429, 503: return "overloaded"
    case 500...: return "internal"
    default: return "bad_request"
    }
  }

  public init(_ status: HTTPResponse.Status, _ message: String, cap: String? = nil) {
    self.status = status
    self.message = message
    self.cap = cap
  }

  public var description: String { "\(status.code): \(message)" }

  public var headers: HTTPFields { [.contentType: "application/json"] }

  public func response(from request: Request, context: some RequestContext) throws -> Response {
    var body: [String: String] = ["error": message]
    if let cap { body["cap"] = cap }
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(data: JSON.encode(body))))
  }

  static func badRequest(_ message: String) -> ServiceError { ServiceError(.badRequest, message) }
  static func notFound(_ message: String) -> ServiceError { ServiceError(.notFound, message) }
  static func tooLarge(_ message: String, cap: String) -> ServiceError { ServiceError(.contentTooLarge, message, cap: cap) }
  static func unprocessable(_ message: String, cap: String? = nil) -> ServiceError {
    ServiceError(.unprocessableContent, message, cap: cap)
  }
}

/// Sorted-key JSON, as every response of the service writes it.
enum JSON {
  static func encode<T: Encodable>(_ value: T) -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return (try? encoder.encode(value)) ?? Data("{}".utf8)
  }
}

extension ByteBuffer {
  init(data: Data) {
    self = ByteBufferAllocator().buffer(capacity: data.count)
    writeBytes(data)
  }

  var data: Data { Data(readableBytesView) }
}
