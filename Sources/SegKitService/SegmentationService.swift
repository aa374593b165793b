import Foundation
import Hummingbird
import NIOCore
import SegKitData
import SegKitInference

/// `segkit serve`: the models loaded once, an HTTP API on Hummingbird, and the page.
///
/// - GET /healthz (alive), /readyz (models loaded), /metrics (Prometheus), /v1/models
/// - POST /v1/segment: an image segmented by a served model (SegmentRequest)
/// - /v1/sessions…: interactive video object segmentation with XMem (SessionRoutes)
/// - POST /v1/videos/semantic, /v1/jobs/{id}: a video annotated by DVSNet, as a job (SemanticVideo)
/// - GET /: the page (Page/index.html, page.js, page.css)
public final class SegmentationService: @unchecked Sendable {
  public let settings: ServiceSettings
  public let models: [ServedModel]
  let xmem: XMemSegmenters?
  let semanticVideo: SemanticVideoModel?
  let metrics = ServiceMetrics()
  let worker: InferenceWorker
  let sessions: SessionStore
  let jobs: JobStore

  /// `models`: the image models (the first is the default); `xmem`: the video object
  /// model, if any; `semanticVideo`: DVSNet for annotated videos, if any.
  public init(settings: ServiceSettings, models: [ServedModel], xmem: XMemSegmenters?, semanticVideo: SemanticVideoModel? = nil) throws {
    self.settings = try settings.validated()
    guard !models.isEmpty || xmem != nil || semanticVideo != nil else {
      throw ServiceSettingsError("nothing to serve: give --run RUN, --vos WEIGHTS or --dvs-run RUN --dvs-flow FLOW")
    }
    let names = models.map(\.name)
    if let duplicate = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
      throw ServiceSettingsError("two runs are named \(duplicate): requests choose models by their run folder's name")
    }
    self.models = models
    self.xmem = xmem
    self.semanticVideo = semanticVideo
    try FileManager.default.createDirectory(at: settings.folder, withIntermediateDirectories: true)
    worker = InferenceWorker(settings: self.settings, metrics: metrics)
    sessions = try SessionStore(settings: self.settings, metrics: metrics)
    jobs = try JobStore(folder: settings.folder)
  }

  /// Serves until the task is cancelled or the process gets SIGINT/SIGTERM; `ready` gets
  /// the port it listens on (the one asked for, or the one the system gave for port 0).
  public func run(ready: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
    let app = Application(
      router: router(),
      configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "segkit"),
      onServerRunning: { channel in ready(channel.localAddress?.port ?? -1) })
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await app.runService() }
      group.addTask { try await self.expireSessions() }
      try await group.next()
      group.cancelAll()
    }
  }

  private func expireSessions() async throws {
    let period = min(5, settings.sessionIdle / 4)
    while !Task.isCancelled {
      try await Task.sleep(nanoseconds: UInt64(period * 1e9))
      sessions.expire()
    }
  }

  func router() -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: GuardMiddleware(token: settings.token, maxBodyBytes: settings.maxBodyBytes, metrics: metrics))
    router.get("/healthz") { _, _ in Self.text("ok\n") }
    router.get("/readyz") { _, _ in Self.text("ready: \(self.models.count) image models, \(self.xmem == nil ? "no" : "one") video model\n") }
    router.get("/metrics") { _, _ in Self.text(self.metrics.text(), type: "text/plain; version=0.0.4") }
    router.get("/v1/models") { _, _ -> Response in
      struct Listing: Encodable { let models: [ModelDescription]; let video: String?; let semanticVideo: String? }
      return try Self.json(Listing(models: self.models.map(ModelDescription.init), video: self.xmem == nil ? nil : "xmem",
                                   semanticVideo: self.semanticVideo.map { "dvsnet (\($0.manifest.model))" }))
    }
    router.post("/v1/segment") { request, _ -> Response in try await self.segment(request) }
    addSessionRoutes(to: router)
    addSemanticVideoRoutes(to: router)
    addPageRoutes(to: router)
    return router
  }

  func segment(_ request: Request) async throws -> Response {
    let body = try await self.body(of: request)
    let query = Dictionary(request.uri.queryParameters.map { (String($0.key), String($0.value)) }) { $1 }
    let options = try SegmentRequest(body: body, contentType: request.headers[.contentType], query: query)
    guard let model = try model(named: options.model) else {
      throw ServiceError.unprocessable("no image model is loaded: start the service with --run RUN")
    }
    _ = try SessionUpload.checkedSize(options.image, name: "the image", settings: settings)
    let image: Image
    do { image = try ImageIO.decode(options.image, name: "the image") } catch { throw ServiceError.unprocessable("\(error)") }
    let settings: InferenceSettings
    do { settings = try options.settings(for: model) } catch { throw ServiceError.badRequest("\(error)") }
    let labels = try await worker.labels(image, model: model, settings: settings)
    return try SegmentAnswer.response(labels: labels, image: image, model: model, request: options)
  }

  func model(named name: String?) throws -> ServedModel? {
    guard let name else { return models.first }
    guard let model = models.first(where: { $0.name == name }) else {
      throw ServiceError.notFound("no model \(name.prefix(80).debugDescription): the service has \(models.map(\.name).joined(separator: ", "))")
    }
    return model
  }

  /// The request's body, refused past --max-body-bytes.
  func body(of request: Request) async throws -> Data {
    do { return try await request.body.collect(upTo: settings.maxBodyBytes).data } catch is NIOTooManyBytesError {
      throw ServiceError.tooLarge("the body is over --max-body-bytes \(settings.maxBodyBytes)", cap: "max-body-bytes")
    }
  }

  static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: JSON.encode(value))))
  }

  static func text(_ text: String, type: String = "text/plain; charset=utf-8") -> Response {
    Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: text)))
  }
}
