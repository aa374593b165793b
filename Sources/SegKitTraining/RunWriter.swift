import Foundation

/// Creates and writes a run folder laid out as `RunLayout` says. A new run refuses
/// a folder that already holds anything, so that no earlier run is overwritten;
/// resuming accepts it (and creates it when missing). Making a writer only checks
/// and creates the folder; files appear when written.
public struct RunWriter {
  public let layout: RunLayout
  public var url: URL { layout.url }

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
      if !resume && !contents.isEmpty {
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
    layout = RunLayout(url)
  }

  /// Writes config.yaml atomically (a resumed run rewrites it with what it now uses).
  public func writeConfig(_ yaml: String) throws {
    do {
      try Data(yaml.utf8).write(to: layout.configURL, options: .atomic)
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
