import Foundation

/// Creates and writes a run folder laid out as `RunLayout` says. A new run refuses
/// a folder that already holds anything, so that no earlier run is overwritten;
/// resuming accepts it (and creates it when missing). The writer holds the folder's
/// lock (`<run>/.lock`) while it lives, so a second training of the same run is
/// refused rather than interleaving checkpoints. Making a writer only checks, creates
/// and locks the folder; files appear when written.
public struct RunWriter {
  public let layout: RunLayout
  public var url: URL { layout.url }
  private let lock: RunLock

  public init(_ url: URL, resume: Bool = false) throws {
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
      if !resume && !contents.filter({ $0 != RunLock.fileName }).isEmpty {
        let shown = contents.prefix(4).joined(separator: ", ") + (contents.count > 4 ? ", …" : "")
        throw TrainingError(
          "run folder \(path) is not empty (\(shown)): resume that run or choose a new folder; nothing was changed")
      }
    } else {
      do {
        try fm.createDirectory(at: url, withIntermediateDirectories: true)
      } catch {
        throw TrainingError("cannot create the run folder \(path): \(Self.obstacle(to: url) ?? RunLayout.reason(error))")
      }
    }
    guard fm.isWritableFile(atPath: path) else {
      throw TrainingError("run folder \(path) is not writable")
    }
    lock = try RunLock(folder: url)
    layout = RunLayout(url)
  }

  /// Writes config.yaml atomically (a resumed run rewrites it with what it now uses).
  public func writeConfig(_ yaml: String) throws {
    do {
      try AtomicFile.write(Data(yaml.utf8), to: layout.configURL)
    } catch {
      throw TrainingError("cannot write \(layout.configURL.path): \(RunLayout.reason(error))")
    }
  }

  /// Writes model.json, the manifest inference reads.
  public func writeManifest(_ manifest: ModelManifest) throws { try manifest.write(to: layout.manifestURL) }

  /// The sinks of a run: train.log and TensorBoard events (a session-start event at
  /// `resumingAt` makes TensorBoard drop what an interrupted session logged after it).
  public func sinks(resumingAt step: Int?) throws -> [any TrainingSink] {
    [try LogFileSink(layout.logURL),
     TensorBoardSink(try TensorBoardWriter(directory: layout.tensorBoardURL, resumingAt: step))]
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
}

/// An advisory lock on a run folder (flock on `<run>/.lock`, which holds the owner's
/// process id for the message), released when the holder exits, however it exits.
final class RunLock {
  static let fileName = ".lock"
  private let descriptor: Int32

  init(folder: URL) throws {
    let path = folder.appendingPathComponent(Self.fileName).path
    descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else {
      throw TrainingError("cannot create the run lock \(path): \(String(cString: strerror(errno)))")
    }
    guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
      let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
      close(descriptor)
      throw TrainingError("run folder \(folder.path) is in use by another training"
        + (holder.isEmpty ? "" : " (process \(holder))") + "; wait for it to end or stop it; nothing was changed")
    }
    let pid = Array("\(getpid())\n".utf8)
    _ = ftruncate(descriptor, 0)
    _ = pid.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
  }

  deinit { close(descriptor) }
}
