import Foundation
import SegKitData
import SegKitInference
import ZIPFoundation

/// The open video sessions: created from an upload, found by their random id, ended
/// by DELETE or by sitting idle past `sessionIdle`, and bounded in number. A session's
/// files live in `folder/sessions/ID/` and go with it.
final class SessionStore: @unchecked Sendable {
  private let lock = NSLock()
  private var sessions: [String: VideoSession] = [:]
  private var creating = 0
  private var running = 0
  let settings: ServiceSettings
  let metrics: ServiceMetrics
  private var root: URL { settings.folder.appendingPathComponent("sessions") }

  init(settings: ServiceSettings, metrics: ServiceMetrics) throws {
    self.settings = settings
    self.metrics = metrics
    // Sessions do not outlive the process: what an earlier run left is removed.
    try? FileManager.default.removeItem(at: root)
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
  }

  var count: Int { lock.withLock { sessions.count } }

  /// A new session from an uploaded video or zip of frames.
  func create(_ body: Data, filename: String?) throws -> VideoSession {
    try lock.withLock {
      guard sessions.count + creating < settings.maxSessions else {
        throw ServiceError.unprocessable("\(settings.maxSessions) sessions are open (--max-sessions); end one with DELETE /v1/sessions/ID", cap: "max-sessions")
      }
      creating += 1
    }
    defer { lock.withLock { creating -= 1 } }
    let id = Self.newID()
    let folder = root.appendingPathComponent(id)
    do {
      try FileManager.default.createDirectory(at: folder.appendingPathComponent("annotations"), withIntermediateDirectories: true)
      try FileManager.default.createDirectory(at: folder.appendingPathComponent("masks"), withIntermediateDirectories: true)
      let frames = try SessionUpload.unpack(body, filename: filename, into: folder, settings: settings)
      let session = VideoSession(id: id, folder: folder, frameFiles: frames.files, width: frames.width, height: frames.height, fps: frames.fps)
      lock.withLock { sessions[id] = session }
      metrics.sessions(open: count)
      return session
    } catch {
      try? FileManager.default.removeItem(at: folder)
      throw error
    }
  }

  /// The session `id` (touched: its idle time starts again). An id that is not one of
  /// the service's (32 hex digits) is never looked up, let alone used as a path.
  func session(_ id: String) throws -> VideoSession {
    try lock.withLock {
      guard Self.isID(id), let session = sessions[id] else { throw ServiceError.notFound("no session \(id.prefix(64).debugDescription)") }
      session.lastUsed = Date()
      return session
    }
  }

  /// Runs `body` on `id`'s session under the store's lock.
  func with<R>(_ id: String, _ body: (VideoSession) throws -> R) throws -> R {
    let session = try session(id)
    return try lock.withLock { try body(session) }
  }

  /// Ends `id`: its propagation stops and its files are removed.
  func delete(_ id: String) throws {
    let session = try lock.withLock { () -> VideoSession in
      guard Self.isID(id), let session = sessions.removeValue(forKey: id) else { throw ServiceError.notFound("no session \(id.prefix(64).debugDescription)") }
      return session
    }
    session.propagation?.cancel()
    try? FileManager.default.removeItem(at: session.folder)
    metrics.sessions(open: count)
  }

  /// Ends the sessions idle for longer than `sessionIdle`; returns their ids.
  @discardableResult
  func expire(now: Date = Date()) -> [String] {
    let idle = lock.withLock {
      sessions.values.filter { now.timeIntervalSince($0.lastUsed) > settings.sessionIdle && $0.propagation == nil }.map(\.id)
    }
    for id in idle { try? delete(id) }
    return idle
  }

  /// Claims one of the `maxJobs` propagation slots for `session`, cancelling its own earlier propagation.
  func beginPropagation(_ session: VideoSession) throws -> VideoSession.Propagation {
    try lock.withLock {
      session.propagation?.cancel()
      if session.propagation != nil { running -= 1 }
      guard running < settings.maxJobs else {
        throw ServiceError.unprocessable("\(settings.maxJobs) propagations are running (--max-jobs); try again when one ends", cap: "max-jobs")
      }
      running += 1
      let job = VideoSession.Propagation()
      session.propagation = job
      return job
    }
  }

  func endPropagation(_ session: VideoSession, _ job: VideoSession.Propagation) {
    lock.withLock {
      if session.propagation === job {
        session.propagation = nil
        running -= 1
      }
      session.lastUsed = Date()
    }
  }

  static func newID() -> String {
    var generator = SystemRandomNumberGenerator()
    return (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
  }

  static func isID(_ text: String) -> Bool {
    text.utf8.count == 32 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
  }
}
