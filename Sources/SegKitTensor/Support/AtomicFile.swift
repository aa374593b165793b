import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file that cannot be written where it was asked for, and why.
public struct FileWriteError: Error, CustomStringConvertible, LocalizedError {
  public let path: String
  public let reason: String

  public init(_ path: String, _ reason: String) {
    self.path = path
    self.reason = reason
  }

  public var description: String { "\(path): \(reason)" }
  public var errorDescription: String? { description }
}

/// The one way SegKit writes a file. Every writer (weights, images, flows, videos,
/// JSON, CSV, ONNX) comes through here, so that the rules hold for every command:
///
/// - a file appears complete or not at all: it is written beside its destination
///   under a temporary name (registered with `PartialFiles`), synced, then renamed;
/// - an output is never one of the command's inputs (`CommandInputs`), whether named
///   by the same path, through a link or as a hard link;
/// - a symbolic link is written through (its target replaced, the link kept);
/// - an existing destination that is not a regular file (a device such as /dev/null,
///   a FIFO, a terminal), and any path under /dev or /proc (/dev/stdout), is written
///   into, never renamed over; a folder is refused.
public enum AtomicFile {
  /// Writes `data` to `url`.
  public static func write(_ data: Data, to url: URL) throws {
    try write(to: url) { try $0.write(contentsOf: data) }
  }

  /// Writes what `body` writes to the handle it is given.
  public static func write(to url: URL, _ body: (FileHandle) throws -> Void) throws {
    let target: URL
    switch try destination(url) {
    case .into(let handle):
      defer { try? handle.close() }
      return try body(handle)
    case .replacing(let resolved): target = resolved
    }
    let temporary = temporaryURL(for: target)
    let folder = target.deletingLastPathComponent()
    guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
      throw FileWriteError(url.path, "cannot create a file in \(folder.path) (\(String(cString: strerror(errno))))")
    }
    PartialFiles.register(temporary)
    defer {
      unlink(temporary.path)  // gone already once renamed
      PartialFiles.unregister(temporary)
    }
    let file = try FileHandle(forWritingTo: temporary)
    do {
      try body(file)
      try file.synchronize()
      try file.close()
    } catch {
      try? file.close()
      throw error
    }
    try rename(temporary, to: target, naming: url)
  }

  /// A temporary name beside `url`, for writers that make the file by other means (a
  /// child process); `place(_:at:)` moves it into position. Callers register it with
  /// `PartialFiles` while it is being written.
  public static func temporaryURL(for url: URL) -> URL {
    url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString.prefix(8)).partial")
  }

  /// Checks `url` as an output before anything is produced for it, so that a long
  /// computation is not wasted on a destination that will be refused.
  public static func checkDestination(_ url: URL) throws {
    if case .into(let handle) = try destination(url) { try? handle.close() }
  }

  /// Moves a finished temporary file to `url` (or copies it into `url` when that is a
  /// device or FIFO), under the same rules as `write`. The temporary file is removed.
  public static func place(_ temporary: URL, at url: URL) throws {
    defer { unlink(temporary.path) }
    switch try destination(url) {
    case .into(let handle):
      defer { try? handle.close() }
      let source = try FileHandle(forReadingFrom: temporary)
      defer { try? source.close() }
      while let chunk = try source.read(upToCount: 1 << 20), !chunk.isEmpty { try handle.write(contentsOf: chunk) }
    case .replacing(let target):
      try rename(temporary, to: target, naming: url)
    }
  }

  private static func rename(_ temporary: URL, to target: URL, naming url: URL) throws {
    guard Glibc.rename(temporary.path, target.path) == 0 else {
      throw FileWriteError(url.path, "the written file cannot be moved into place (\(String(cString: strerror(errno))))")
    }
  }

  private enum Destination {
    /// A regular file (or a new name) to replace by renaming onto it.
    case replacing(URL)
    /// A device, FIFO or socket to write into.
    case into(FileHandle)
  }

  /// Refuses an input or a folder as the destination and says how to write it. A FIFO
  /// is opened without waiting: one that nobody reads is refused, not waited on.
  private static func destination(_ url: URL) throws -> Destination {
    if let input = CommandInputs.input(sameAs: url) {
      let how = input.path == url.path ? "" : " (\(input.path))"
      throw FileWriteError(url.path, "is one of this command's inputs\(how): write the output under another name")
    }
    var info = stat()
    let exists = stat(url.path, &info) == 0
    let system = url.path.hasPrefix("/dev/") || url.path.hasPrefix("/proc/")
    if exists && info.st_mode & S_IFMT == S_IFDIR { throw FileWriteError(url.path, "is a folder, not a file") }
    if exists && (system || info.st_mode & S_IFMT != S_IFREG) {
      // A regular file behind /dev/stdout (output redirected to a file) is appended to.
      let fd = open(url.path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | (info.st_mode & S_IFMT == S_IFREG ? O_APPEND : 0))
      guard fd >= 0 else {
        let reason = errno == ENXIO ? "a FIFO that nobody reads" : String(cString: strerror(errno))
        throw FileWriteError(url.path, "cannot be written (\(reason))")
      }
      _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
      return .into(FileHandle(fileDescriptor: fd, closeOnDealloc: true))
    }
    // A link is written through: its target is replaced and the link kept.
    return .replacing(exists ? url.resolvingSymlinksInPath() : url)
  }
}

/// The files the running command reads as its inputs (weights, checkpoints, images,
/// flows, videos, sample files), so that `AtomicFile` never writes over one of them.
/// The `segkit` command turns it on; a library caller that reads a file and writes it
/// back is not second-guessed. A file is known by its device and inode, so a link or
/// a hard link to an input is the input; the path it was read from is checked again
/// at each write, so an input that has since been removed or replaced frees its inode.
public enum CommandInputs {
  private static let lock = NSLock()
  nonisolated(unsafe) private static var tracking = false
  nonisolated(unsafe) private static var inputs: [FileIdentity: URL] = [:]

  private struct FileIdentity: Hashable {
    let device: UInt64
    let inode: UInt64
  }

  /// From now on, files read through `note` are this process's inputs (`false`: no
  /// longer, and those recorded are forgotten).
  public static func track(_ enabled: Bool = true) {
    lock.lock()
    defer { lock.unlock() }
    tracking = enabled
    if !enabled { inputs.removeAll() }
  }

  /// Records `url` as an input (readers call this; it costs nothing unless tracking).
  public static func note(_ url: URL) {
    lock.lock()
    defer { lock.unlock() }
    guard tracking, let identity = identity(of: url) else { return }
    inputs[identity] = url
  }

  /// The input that `url` names, if it names one.
  public static func input(sameAs url: URL) -> URL? {
    lock.lock()
    defer { lock.unlock() }
    guard tracking, let identity = identity(of: url), let input = inputs[identity] else { return nil }
    guard Self.identity(of: input) == identity else {
      inputs[identity] = nil  // removed or replaced since it was read
      return nil
    }
    return input
  }

  private static func identity(of url: URL) -> FileIdentity? {
    var info = stat()
    guard stat(url.path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
    return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
  }
}

/// Where a command may put a folder of outputs.
public enum OutputFolder {
  /// Whether `folder` (which need not exist yet) is `root` or lies inside it, links
  /// resolved: results written there would mix with the data being read.
  public static func isInside(_ folder: URL, _ root: URL) -> Bool {
    let inner = resolved(folder).pathComponents, outer = resolved(root).pathComponents
    return inner.count >= outer.count && Array(inner.prefix(outer.count)) == outer
  }

  /// The path with links resolved in the part that exists (a folder to be created
  /// has no links of its own yet).
  private static func resolved(_ url: URL) -> URL {
    var existing = url.standardizedFileURL
    var rest: [String] = []
    while !FileManager.default.fileExists(atPath: existing.path), existing.pathComponents.count > 1 {
      rest.insert(existing.lastPathComponent, at: 0)
      existing.deleteLastPathComponent()
    }
    return rest.reduce(existing.resolvingSymlinksInPath()) { $0.appendingPathComponent($1) }
  }
}
