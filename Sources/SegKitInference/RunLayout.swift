import Foundation

/// Where everything of a training run lives, read-only: nothing here creates or
/// writes a file, so evaluation, prediction, export and serving can point at a
/// run that is still training.
///
///     <run>/config.yaml                           the resolved training configuration
///     <run>/model.json                            the model manifest (ModelManifest)
///     <run>/train.log                             plain-text log, appended
///     <run>/checkpoints/step-000123.safetensors   weights, optimizer state, metadata
///     <run>/model.safetensors                     the final weights
///     <run>/events.out.tfevents.*                 TensorBoard (the run folder is a logdir)
public struct RunLayout: Sendable, Equatable {
  public let url: URL

  public init(_ url: URL) { self.url = url }

  public var configURL: URL { url.appendingPathComponent("config.yaml") }
  public var manifestURL: URL { url.appendingPathComponent(ModelManifest.fileName) }
  public var logURL: URL { url.appendingPathComponent("train.log") }
  public var checkpointsURL: URL { url.appendingPathComponent("checkpoints") }
  public var finalWeightsURL: URL { url.appendingPathComponent("model.safetensors") }
  /// Where TensorBoard event files go (the run folder itself).
  public var tensorBoardURL: URL { url }

  /// The checkpoints, keeping the newest `keep` when saving (0 keeps all).
  public func checkpoints(keep: Int = 0) -> CheckpointStore { CheckpointStore(directory: checkpointsURL, keep: keep) }

  /// An existing run folder (one holding model.json, or config.yaml for a run that has
  /// not written its manifest yet), checked.
  public static func existing(_ url: URL) throws -> RunLayout {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
      throw InferenceError("run folder \(url.path): no such folder")
    }
    let layout = RunLayout(url)
    guard FileManager.default.fileExists(atPath: layout.manifestURL.path) || FileManager.default.fileExists(atPath: layout.configURL.path)
    else {
      throw InferenceError("\(url.path): not a run folder (no \(ModelManifest.fileName) or config.yaml)")
    }
    return layout
  }

  /// `runs/YYYYMMDD_MODEL_N` under `parent` with the first N not yet taken (seg-mentor's naming).
  public static func nextDefault(model: String, under parent: URL = URL(fileURLWithPath: "runs"), date: Date = Date()) -> RunLayout {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.dateFormat = "yyyyMMdd"
    let base = parent.appendingPathComponent("\(formatter.string(from: date))_\(model)").path
    var n = 1
    while FileManager.default.fileExists(atPath: "\(base)_\(n)") { n += 1 }
    return RunLayout(URL(fileURLWithPath: "\(base)_\(n)"))
  }

  /// The newest checkpoint that reads back whole; unreadable ones are skipped, each
  /// reported through `warning`.
  public func latestCheckpoint(warning: (String) -> Void = { _ in }) -> (url: URL, checkpoint: Checkpoint)? {
    checkpoints().latest(warning: warning)
  }

  /// The URL of the newest readable checkpoint, or an error saying there is none.
  public func latestCheckpointURL(warning: (String) -> Void = { _ in }) throws -> URL {
    guard let latest = latestCheckpoint(warning: warning) else {
      throw InferenceError("\(checkpointsURL.path): no readable checkpoint (step-*.safetensors) in this run")
    }
    return latest.url
  }

  /// The text of config.yaml, or nil when the run has none yet.
  public func storedConfig() throws -> String? {
    guard FileManager.default.fileExists(atPath: configURL.path) else { return nil }
    do {
      return try String(contentsOf: configURL, encoding: .utf8)
    } catch {
      throw InferenceError("cannot read \(configURL.path): \(Self.reason(error))")
    }
  }

  /// The run's model manifest.
  public func manifest() throws -> ModelManifest {
    guard FileManager.default.fileExists(atPath: manifestURL.path) else {
      throw InferenceError("\(url.path): the run has no \(ModelManifest.fileName) (written when a run starts)")
    }
    return try ModelManifest.read(from: manifestURL)
  }

  /// The underlying POSIX reason where there is one ("Permission denied"), rather than
  /// Foundation's generic "You don't have permission".
  public static func reason(_ error: Error) -> String {
    let ns = error as NSError
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
      return String(cString: strerror(Int32(underlying.code)))
    }
    return ns.localizedDescription
  }
}
