import Foundation
import Hummingbird
import SegKitData
import SegKitInference
import ZIPFoundation

/// The interactive video loop: /v1/sessions and what hangs under a session.
extension SegmentationService {
  struct SessionInfo: Encodable {
    let id: String
    let frames: Int
    let width: Int
    let height: Int
    let fps: Double
    let annotated: [Int]
    let segmented: [Int]
  }

  func info(_ session: VideoSession) throws -> SessionInfo {
    try sessions.with(session.id) {
      SessionInfo(id: $0.id, frames: $0.frameCount, width: $0.width, height: $0.height, fps: $0.fps,
                  annotated: $0.annotated.sorted(), segmented: $0.segmented.sorted())
    }
  }

  func addSessionRoutes(to router: Router<BasicRequestContext>) {
    router.post("/v1/sessions") { request, _ -> Response in
      let body = try await self.body(of: request)
      var upload = body
      var filename: String?
      if let type = request.headers[.contentType], let boundary = try? MultipartForm.boundary(contentType: type) {
        let form: MultipartForm
        do { form = try MultipartForm(body, boundary: boundary) } catch { throw ServiceError.badRequest("\(error)") }
        guard let part = form["video"] ?? form["frames"] else { throw ServiceError.badRequest("the form has no 'video' or 'frames' part") }
        (upload, filename) = (part.body, part.filename)
      }
      guard !upload.isEmpty else { throw ServiceError.badRequest("no video: send a video file or a zip of frames as the body") }
      let store = self.sessions
      let session = try await Self.blocking { try store.create(upload, filename: filename) }
      return try Self.json(self.info(session), status: .created)
    }
    router.get("/v1/sessions/:id") { _, context -> Response in
      try Self.json(self.info(self.sessions.session(context.parameters.require("id"))))
    }
    router.delete("/v1/sessions/:id") { _, context -> Response in
      try self.sessions.delete(context.parameters.require("id"))
      return Response(status: .noContent)
    }
    router.get("/v1/sessions/:id/frames/:t") { _, context -> Response in
      let session = try self.sessions.session(context.parameters.require("id"))
      let t = try Self.frame(context, session)
      let data = try Data(contentsOf: session.frameURL(t))
      let type = session.frameFiles[t].hasSuffix(".jpg") ? "image/jpeg" : "image/png"
      return Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(data: data)))
    }
    router.get("/v1/sessions/:id/masks/:t") { _, context -> Response in
      let session = try self.sessions.session(context.parameters.require("id"))
      let t = try Self.frame(context, session)
      let mask = try self.sessions.with(session.id) { try $0.currentMask(t) }
      return Response(status: .ok, headers: [.contentType: "image/png"],
                      body: .init(byteBuffer: ByteBuffer(data: try ImageIO.pngData(mask, palette: .pascal))))
    }
    router.put("/v1/sessions/:id/masks/:t") { request, context -> Response in
      let session = try self.sessions.session(context.parameters.require("id"))
      let t = try Self.frame(context, session)
      let body = try await self.body(of: request)
      let object = try request.uri.queryParameters.get("object").map(Self.objectID)
      try self.putMask(body, contentType: request.headers[.contentType], object: object, frame: t, session: session)
      return try Self.json(self.info(session))
    }
    router.post("/v1/sessions/:id/propagate") { request, context -> Response in
      try self.propagate(request, session: self.sessions.session(context.parameters.require("id")))
    }
    router.delete("/v1/sessions/:id/propagate") { _, context -> Response in
      let session = try self.sessions.session(context.parameters.require("id"))
      let running = try self.sessions.with(session.id) { $0.propagation }
      running?.cancel()
      return try Self.json(["cancelled": running != nil])
    }
    router.get("/v1/sessions/:id/result") { request, context -> Response in
      let session = try self.sessions.session(context.parameters.require("id"))
      let format = request.uri.queryParameters.get("format") ?? "davis"
      switch format {
      case "davis":
        let data = try await Self.blocking { try self.davisZip(session) }
        return Response(status: .ok, headers: [.contentType: "application/zip", .contentDisposition: "attachment; filename=\"masks.zip\""],
                        body: .init(byteBuffer: ByteBuffer(data: data)))
      case "video":
        let data = try await Self.blocking { try self.overlayVideo(session) }
        return Response(status: .ok, headers: [.contentType: "video/mp4", .contentDisposition: "attachment; filename=\"overlay.mp4\""],
                        body: .init(byteBuffer: ByteBuffer(data: data)))
      default: throw ServiceError.badRequest("format must be davis or video, got '\(format.prefix(40))'")
      }
    }
  }

  /// Runs file and codec work (unzipping, ffmpeg, encoding) on a dispatch thread, off
  /// Swift's few cooperative threads, which keep answering other requests meanwhile.
  static func blocking<T>(_ body: @escaping () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
      DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
  }

  static func frame(_ context: BasicRequestContext, _ session: VideoSession) throws -> Int {
    let text = try context.parameters.require("t")
    guard let t = Int(text), (0..<session.frameCount).contains(t) else {
      throw ServiceError.notFound("no frame \(text.prefix(20).debugDescription): the session has frames 0 to \(session.frameCount - 1)")
    }
    return t
  }

  static func objectID(_ text: String) throws -> UInt8 {
    guard let id = Int(text), (1...255).contains(id) else { throw ServiceError.badRequest("object must be an id from 1 to 255, got \(text.prefix(40).debugDescription)") }
    return UInt8(id)
  }

  /// A mask for frame `t`: a label PNG of every object (values are object ids), or with
  /// `object` a binary PNG or a JSON `{"object": ID, "rle": {...}}` for that one object,
  /// merged into the frame's other objects.
  func putMask(_ body: Data, contentType: String?, object: UInt8?, frame t: Int, session: VideoSession) throws {
    var object = object
    let given: Image
    if contentType?.hasPrefix("application/json") == true {
      struct Body: Decodable { let object: Int; let rle: RunLengthEncoding }
      let decoded: Body
      do { decoded = try JSONDecoder().decode(Body.self, from: body) } catch {
        throw ServiceError.badRequest("the JSON body must be {\"object\": ID, \"rle\": {\"size\": [H, W], \"counts\": \"…\"}}")
      }
      object = try Self.objectID(String(decoded.object))
      guard decoded.rle.size == [session.height, session.width] else {
        throw ServiceError.unprocessable("rle.size is \(decoded.rle.size.prefix(4)), the session's frames [\(session.height), \(session.width)]")
      }
      do { given = try decoded.rle.mask(value: 1, maxPixels: settings.maxImagePixels, field: "rle") } catch {
        throw ServiceError.unprocessable("\(error)")
      }
    } else {
      _ = try SessionUpload.checkedSize(body, name: "the mask", settings: settings)
      do { given = try ImageIO.decodeLabel(body, name: "the mask") } catch { throw ServiceError.unprocessable("\(error)") }
    }
    guard given.width == session.width, given.height == session.height else {
      throw ServiceError.unprocessable("the mask is \(given.width)×\(given.height), the session's frames \(session.width)×\(session.height)")
    }
    try sessions.with(session.id) { session in
      var mask = given
      if let object {
        mask = try session.currentMask(t)
        for i in mask.pixels.indices {
          if given.pixels[i] != 0 { mask.pixels[i] = object } else if mask.pixels[i] == object { mask.pixels[i] = 0 }
        }
      }
      if mask.pixels.allSatisfy({ $0 == 0 }) {
        session.annotated.remove(t)
        try? FileManager.default.removeItem(at: session.annotationURL(t))
      } else {
        try ImageIO.writePNG(mask, to: session.annotationURL(t), palette: .pascal)
        session.annotated.insert(t)
      }
    }
  }

  func propagate(_ request: Request, session: VideoSession) throws -> Response {
    guard let xmem else { throw ServiceError.unprocessable("no video model is loaded: start the service with --vos WEIGHTS") }
    let from = try request.uri.queryParameters.get("from").map { text -> Int in
      guard let t = Int(text), (0..<session.frameCount).contains(t) else {
        throw ServiceError.badRequest("from must be a frame from 0 to \(session.frameCount - 1), got \(text.prefix(20).debugDescription)")
      }
      return t
    } ?? 0
    let directionText = request.uri.queryParameters.get("direction") ?? "forward"
    guard let direction = MaskPropagation.Direction(rawValue: directionText) else {
      throw ServiceError.badRequest("direction must be forward or backward, got \(directionText.prefix(20).debugDescription)")
    }
    guard try sessions.with(session.id, { try $0.startingMask(from) }) != nil else {
      throw ServiceError.unprocessable("frame \(from) has no mask yet: PUT /v1/sessions/\(session.id)/masks/\(from) first")
    }
    let job = try sessions.beginPropagation(session)
    let propagation = MaskPropagation(xmem: xmem, worker: worker)
    let store = sessions
    return Response(status: .ok, headers: [.contentType: "application/x-ndjson", .cacheControl: "no-store"], body: .init { writer in
      defer { store.endPropagation(session, job) }
      do {
        try await propagation.run(session: session, store: store, from: from, direction: direction, job: job) { step in
          try await writer.write(ByteBuffer(data: JSON.encode(step) + Data("\n".utf8)))
        }
        let end: [String: String] = job.cancelled ? ["end": "cancelled"] : ["end": "done"]
        try await writer.write(ByteBuffer(data: JSON.encode(end) + Data("\n".utf8)))
      } catch {
        // The client went away (nothing to tell) or the propagation failed (told in the stream).
        job.cancel()
        try? await writer.write(ByteBuffer(data: JSON.encode(["end": "error", "error": "\(error)"]) + Data("\n".utf8)))
      }
      try await writer.finish(nil)
    })
  }

  /// The masks in DAVIS's results layout: `SESSION/00000.png`… (palette PNGs of object ids), every frame.
  func davisZip(_ session: VideoSession) throws -> Data {
    let archive = try Archive(accessMode: .create)
    for t in 0..<session.frameCount {
      let png = try ImageIO.pngData(sessions.with(session.id) { try $0.currentMask(t) }, palette: .pascal)
      try archive.addEntry(with: "\(session.id)/\(String(format: "%05d", t)).png", type: .file, uncompressedSize: Int64(png.count),
                           compressionMethod: .deflate) { position, size in png.subdata(in: Int(position)..<Int(position) + size) }
    }
    guard let data = archive.data else { throw ServiceError(.internalServerError, "the zip could not be built") }
    return data
  }

  /// The frames with their masks blended in, as an MP4 (written in the session's folder, then read back).
  func overlayVideo(_ session: VideoSession) throws -> Data {
    let url = session.folder.appendingPathComponent("overlay.mp4")
    defer { try? FileManager.default.removeItem(at: url) }
    let writer = try PredictionWriter(palette: .pascal, alpha: 0.5)
    let video = try VideoWriter(url: url, width: session.width, height: session.height, fps: session.fps)
    for t in 0..<session.frameCount {
      let mask = try sessions.with(session.id) { try $0.currentMask(t) }
      try video.write(writer.blend(image: ImageIO.read(session.frameURL(t)), labels: mask))
    }
    try video.finish()
    return try Data(contentsOf: url)
  }
}
