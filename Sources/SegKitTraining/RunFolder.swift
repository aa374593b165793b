import Foundation

/// The folder of one training run:
///
///     <run>/config.yaml                      the resolved configuration
///     <run>/train.log                        plain-text log, appended
///     <run>/checkpoints/step-000123.safetensors
///     <run>/events.out.tfevents.*            TensorBoard (the run folder is a logdir)
///
/// A new run refuses a folder that already holds anything, so that no earlier run
/// is overwritten; resuming accepts it (and creates it when missing).
public final class RunFolder {
  public let url: URL
  public let checkpoints: CheckpointStore
  /// Also print each log line to standard output.
  public var echo: Bool
  private let logFile: FileHandle
  private let lock = NSLock()
  private let timestamp: DateFormatter = {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return formatter
  }()

  public var configURL: URL { url.appendingPathComponent("config.yaml") }
  public var logURL: URL { url.appendingPathComponent("train.log") }
  public var checkpointDirectory: URL { url.appendingPathComponent("checkpoints") }
  /// Where TensorBoard event files go (the run folder itself).
  public var tensorBoardDirectory: URL { url }

  public init(_ url: URL, resume: Bool = false, keepCheckpoints: Int = 5, echo: Bool = false) throws {
    let fm = FileManager.default
    let path = url.path
    var isDirectory: ObjCBool = false
    if fm.fileExists(atPath: path, isDirectory: &isDirectory) {
      guard isDirectory.boolValue else {
        throw TrainingError("run folder \(path) is an existing file, not a folder")
      }
      let contents: [String]
      do {
        contents = try fm.contentsOfDirectory(atPath: path).sorted()
      } catch {
        throw TrainingError("cannot read the run folder \(path): \(error.localizedDescription)")
      }
      if !resume && !contents.isEmpty {
        let shown = contents.prefix(4).joined(separator: ", ") + (contents.count > 4 ? ", …" : "")
        throw TrainingError(
          "run folder \(path) is not empty (\(shown)): resume that run or choose a new folder; nothing was changed")
      }
    } else {
      do {
        try fm.createDirectory(at: url, withIntermediateDirectories: true)
      } catch {
        throw TrainingError("cannot create the run folder \(path): \(Self.obstacle(to: url) ?? Self.reason(error))")
      }
    }
    guard fm.isWritableFile(atPath: path) else {
      throw TrainingError("run folder \(path) is not writable")
    }
    let log = url.appendingPathComponent("train.log")
    if !fm.fileExists(atPath: log.path) && !fm.createFile(atPath: log.path, contents: nil) {
      throw TrainingError("cannot create the log file \(log.path)")
    }
    guard let handle = FileHandle(forUpdatingAtPath: log.path) else {
      throw TrainingError("cannot open the log file \(log.path) for writing")
    }
    self.url = url
    self.echo = echo
    logFile = handle
    checkpoints = CheckpointStore(directory: url.appendingPathComponent("checkpoints"), keep: keepCheckpoints)
  }

  deinit { try? logFile.close() }

  /// Appends a time-stamped line to train.log, written through at once.
  public func log(_ message: String) throws {
    lock.lock()
    defer { lock.unlock() }
    let line = "\(timestamp.string(from: Date())) \(message)\n"
    if echo { print(line, terminator: "") }
    do {
      try logFile.seekToEnd()
      try logFile.write(contentsOf: Data(line.utf8))
    } catch {
      throw TrainingError("cannot write to the log file \(logURL.path): \(Self.reason(error))")
    }
  }

  /// Writes config.yaml atomically (a resumed run rewrites it with what it now uses).
  public func writeConfig(_ yaml: String) throws {
    do {
      try Data(yaml.utf8).write(to: configURL, options: .atomic)
    } catch {
      throw TrainingError("cannot write \(configURL.path): \(Self.reason(error))")
    }
  }

  /// The config.yaml an earlier session of this run wrote, if any.
  public func storedConfig() throws -> String? {
    guard FileManager.default.fileExists(atPath: configURL.path) else { return nil }
    do {
      return try String(contentsOf: configURL, encoding: .utf8)
    } catch {
      throw TrainingError("cannot read \(configURL.path): \(Self.reason(error))")
    }
  }

  /// Why a folder cannot be created there: its nearest existing ancestor is a file or
  /// is not writable (Foundation's own error often just says "error 512").
  static func obstacle(to url: URL) -> String? {
    var ancestor = url.deletingLastPathComponent()
    var isDirectory: ObjCBool = false
    while !FileManager.default.fileExists(atPath: ancestor.path, isDirectory: &isDirectory) && ancestor.path != "/" {
      ancestor = ancestor.deletingLastPathComponent()
    }
    if !isDirectory.boolValue { return "\(ancestor.path) is a file, not a folder" }
    if !FileManager.default.isWritableFile(atPath: ancestor.path) { return "\(ancestor.path) is not writable" }
    return nil
  }

  /// The underlying POSIX reason where there is one ("Permission denied"), rather than
  /// Foundation's generic "You don't have permission".
  static func reason(_ error: Error) -> String {
    let ns = error as NSError
    if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
      return String(cString: strerror(Int32(underlying.code)))
    }
    return ns.localizedDescription
  }
}
