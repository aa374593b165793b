import Foundation
import Hummingbird

/// Around every request: the token check (all but /healthz and the page's three static
/// files, which a browser fetches without headers and which hold no data), an early refusal of a
/// declared body past the cap, errors turned into JSON answers, and the request counted
/// in /metrics under its route (session ids and frame numbers folded into `:id`, `:t`).
struct GuardMiddleware<Context: RequestContext>: RouterMiddleware {
  let token: String?
  let maxBodyBytes: Int
  let metrics: ServiceMetrics

  func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
    let start = Date()
    let route = Self.route(request.uri.path)
    do {
      if let token, !Self.open.contains(request.uri.path), !Self.authorized(request, token: token) {
        throw ServiceError(.unauthorized, "this service needs its token: send 'Authorization: Bearer TOKEN' (or ?token=TOKEN)")
      }
      if let length = request.headers[.contentLength].flatMap(Int.init), length > maxBodyBytes {
        throw ServiceError.tooLarge("the body is \(length) bytes, over --max-body-bytes \(maxBodyBytes)", cap: "max-body-bytes")
      }
      let response = try await next(request, context)
      metrics.request(route: route, status: Int(response.status.code), seconds: Date().timeIntervalSince(start))
      return response
    } catch {
      let refusal = Self.refusal(error)
      metrics.error(kind: refusal.kind)
      metrics.request(route: route, status: Int(refusal.status.code), seconds: Date().timeIntervalSince(start))
      throw refusal
    }
  }

  /// Any error as the service's JSON refusal: its own as they are, the router's and
  /// Hummingbird's with their status, and the libraries' (a bad image, a mask of the
  /// wrong size) as 422 with their message.
  static func refusal(_ error: Error) -> ServiceError {
    switch error {
    case let error as ServiceError: return error
    case let error as HTTPError: return ServiceError(error.status, error.body ?? error.status.reasonPhrase)
    case let error as HTTPResponseError:
      return ServiceError(error.status, error.status == .contentTooLarge ? "the body is too large" : error.status.reasonPhrase)
    default: return ServiceError(.unprocessableContent, "\(error)")
    }
  }

  /// What answers without the token.
  static var open: Set<String> { ["/healthz", "/", "/page.js", "/page.css"] }

  static func authorized(_ request: Request, token: String) -> Bool {
    let given = request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
      ?? request.uri.queryParameters.get("token")
    guard let given else { return false }
    // Compared in full whatever the first difference, so timing says nothing about the token.
    let (a, b) = (Array(given.utf8), Array(token.utf8))
    var difference = a.count ^ b.count
    for i in 0..<max(a.count, b.count) { difference |= Int((i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)) }
    return difference == 0
  }

  static func route(_ path: String) -> String {
    let parts = path.split(separator: "/", omittingEmptySubsequences: false).map { part -> String in
      if SessionStore.isID(String(part)) { return ":id" }
      if !part.isEmpty, part.allSatisfy(\.isNumber) { return ":t" }
      return String(part)
    }
    let known = ["/", "/healthz", "/readyz", "/metrics", "/v1/models", "/v1/segment", "/v1/sessions", "/v1/sessions/:id",
                 "/v1/sessions/:id/frames/:t", "/v1/sessions/:id/masks/:t", "/v1/sessions/:id/propagate", "/v1/sessions/:id/result",
                 "/v1/videos/semantic", "/v1/jobs/:id", "/v1/jobs/:id/result",
                 "/page.js", "/page.css"]
    let joined = parts.joined(separator: "/")
    return known.contains(joined) ? joined : "other"
  }
}
