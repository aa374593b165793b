import Foundation

/// How `segkit serve` listens and what it accepts. Every limit is a flag of the command
/// with the default below; a request past one is refused (413 or 422, with the limit's
/// name in the JSON error) and the service goes on serving.
public struct ServiceSettings: Sendable {
  public var host = "127.0.0.1"
  /// 0: any free port (the service reports the one it got).
  public var port = 8080
  /// With a token, every request but /healthz and the page's static files needs `Authorization: Bearer TOKEN`
  /// (or `?token=TOKEN`, for links the page opens).
  public var token: String?
  /// The service's own folder: session frames and masks live under it, nothing else is written.
  public var folder: URL

  /// Request bodies (an image, a form, a video or a zip of frames).
  public var maxBodyBytes = 256 << 20
  /// An image's pixels, read from its header before it is decoded.
  public var maxImagePixels = 4096 * 4096
  /// Frames of a session's video.
  public var maxFrames = 2000
  /// Bytes a session's frames may unpack to (a zip bomb stops here).
  public var maxSessionBytes = 2 << 30
  /// Sessions open at once.
  public var maxSessions = 16
  /// Propagations running at once.
  public var maxJobs = 2
  /// Image requests waiting for the model.
  public var maxQueue = 256
  /// Seconds an image request may wait and run before it is answered 503.
  public var requestTimeout: Double = 60
  /// Seconds a session may sit unused before it expires and its files are removed.
  public var sessionIdle: Double = 900

  /// Micro-batching: concurrent images of one model and one size run as one batch of up
  /// to `maxBatch`, gathered for at most `maxDelayMs` after the first arrives.
  public var maxBatch = 1
  public var maxDelayMs = 5.0

  public init(folder: URL) { self.folder = folder }

  /// The settings checked, each error naming its flag.
  public func validated() throws -> ServiceSettings {
    func check(_ ok: Bool, _ message: String) throws { if !ok { throw ServiceSettingsError(message) } }
    try check((0...65535).contains(port), "--port must be 0 to 65535, got \(port)")
    try check(!host.isEmpty, "--host must not be empty")
    try check(token.map { !$0.isEmpty && $0.utf8.count <= 256 } ?? true, "--token must be 1 to 256 characters")
    try check(maxBodyBytes >= 1024, "--max-body-bytes must be at least 1024, got \(maxBodyBytes)")
    try check((1...(1 << 28)).contains(maxImagePixels), "--max-image-pixels must be 1 to \(1 << 28), got \(maxImagePixels)")
    try check((1...100_000).contains(maxFrames), "--max-frames must be 1 to 100000, got \(maxFrames)")
    try check(maxSessionBytes >= 1 << 20, "--max-session-bytes must be at least 1 MiB, got \(maxSessionBytes)")
    try check((1...10_000).contains(maxSessions), "--max-sessions must be 1 to 10000, got \(maxSessions)")
    try check((1...64).contains(maxJobs), "--max-jobs must be 1 to 64, got \(maxJobs)")
    try check((1...100_000).contains(maxQueue), "--max-queue must be 1 to 100000, got \(maxQueue)")
    try check(requestTimeout > 0 && requestTimeout <= 86_400, "--request-timeout must be in (0, 86400] seconds, got \(requestTimeout)")
    try check(sessionIdle > 0 && sessionIdle <= 7 * 86_400, "--session-idle must be in (0, 604800] seconds, got \(sessionIdle)")
    try check((1...64).contains(maxBatch), "--max-batch must be 1 to 64, got \(maxBatch)")
    try check(maxDelayMs >= 0 && maxDelayMs <= 1000, "--max-delay-ms must be 0 to 1000, got \(maxDelayMs)")
    return self
  }
}

public struct ServiceSettingsError: Error, CustomStringConvertible, Sendable {
  public let description: String
  init(_ description: String) { self.description = description }
}
