import ArgumentParser
import Foundation
import SegKitInference

/// A failure to report to the user as it is (no usage text, non-zero exit).
struct CommandError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

/// Writes `data` whole under `url` (AtomicFile: a temporary name, fsync, rename); a
/// failure becomes the command's error, naming the file.
func write(_ data: Data, to url: URL) throws {
  do { try AtomicFile.write(data, to: url) } catch let error as FileWriteError {
    throw CommandError(error.description)
  } catch {
    throw CommandError("\(url.path): cannot be written (\(error.localizedDescription))")
  }
}

/// An old option spelling still accepted for one release: says what replaces it.
func deprecated(_ old: String, use new: String) {
  warn("\(old) is deprecated and will be removed in the next release; use \(new)")
}

/// Rewrites the terminal's current line (progress bars).
func showOnCurrentLine(_ text: String) {
  FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + text).utf8))
}

/// `[#####.....] done/total unit`.
func progressBar(_ done: Int, _ total: Int, unit: String, width: Int = 30) -> String {
  let filled = total > 0 ? width * done / total : width
  return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] \(done)/\(total) \(unit)"
}

/// A device named on the command line, checked to be present.
func resolveDevice(_ text: String) throws -> Device {
  do { return try Device.resolve(text) } catch let error as InferenceError { throw ValidationError("--device: \(error.message)") }
}

/// Checks before any work that `path` can be written later: its folder exists (or
/// can be made) and it is not a folder itself.
func writableFile(_ path: String, option: String) throws -> URL {
  let url = URL(fileURLWithPath: path)
  var isDirectory: ObjCBool = false
  if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
    throw ValidationError("\(option) \(path) is a folder, not a file")
  }
  try createFolder(url.deletingLastPathComponent())
  guard FileManager.default.isWritableFile(atPath: url.deletingLastPathComponent().path) else {
    throw ValidationError("\(option) \(path): its folder is not writable")
  }
  return url
}

func createFolder(_ url: URL) throws {
  do {
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  } catch {
    throw CommandError("\(url.path): cannot create the folder (\(error.localizedDescription))")
  }
}

/// A line on standard error (warnings and progress stay out of the results on standard output).
func warn(_ message: String, prefix: String = "warning: ") {
  FileHandle.standardError.write(Data("\(prefix)\(message)\n".utf8))
}

/// `--force`: replace earlier results; `--overwrite` is its old spelling, kept for one release.
struct ForceArgument: ParsableArguments {
  @Flag(help: "Replace earlier results in the output folder.")
  var force = false

  @Flag(help: ArgumentHelp("Deprecated spelling of --force.", visibility: .hidden))
  var overwrite = false

  /// Whether to replace, saying once that --overwrite is deprecated.
  func replacing() -> Bool {
    if overwrite { deprecated("--overwrite", use: "--force") }
    return force || overwrite
  }
}
