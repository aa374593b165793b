import Foundation

/// Files being written under a temporary name (`.NAME.partial…`) until they are
/// complete and renamed into place. Writers register them, so that a process
/// told to quit at once (a second Ctrl-C) removes them before it exits instead of
/// leaving them behind.
public enum PartialFiles {
  private static let lock = NSLock()
  nonisolated(unsafe) private static var paths: Set<String> = []

  public static func register(_ url: URL) {
    lock.lock()
    defer { lock.unlock() }
    paths.insert(url.path)
  }

  public static func unregister(_ url: URL) {
    lock.lock()
    defer { lock.unlock() }
    paths.remove(url.path)
  }

  /// Removes every registered file (before exiting on a signal).
  public static func removeAll() {
    lock.lock()
    defer { lock.unlock() }
    for path in paths { unlink(path) }
    paths.removeAll()
  }
}
