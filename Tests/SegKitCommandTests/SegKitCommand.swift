import Foundation
import SegKitTestSupport

/// Runs the `segkit` executable that `swift build --build-tests` puts beside the test bundle.
enum SegKitCommand {
  struct Result {
    let status: Int32
    let output: String
    let error: String
  }

  static func executable() throws -> URL {
    var folders = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
    if let executable = Bundle.main.executableURL { folders.append(executable.deletingLastPathComponent()) }
    for bundle in Bundle.allBundles { folders.append(bundle.bundleURL.deletingLastPathComponent()) }
    for folder in folders {
      let candidate = folder.appendingPathComponent("segkit")
      if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    throw Oracle.Failure(description: "the segkit executable was not found next to the tests in \(folders.map(\.path))")
  }

  /// Runs `segkit ARGUMENTS` to completion, capturing both output streams.
  /// Runs segkit (or `executable`) to its end; `environment` is added to this process's.
  static func run(_ arguments: [String], environment: [String: String] = [:], executable: URL? = nil) throws -> Result {
    let scratch = try Oracle.temporaryDirectory("segkit-command")
    defer { try? FileManager.default.removeItem(at: scratch) }
    let outputFile = scratch.appendingPathComponent("stdout"), errorFile = scratch.appendingPathComponent("stderr")
    try Data().write(to: outputFile)
    try Data().write(to: errorFile)
    let process = Process()
    process.executableURL = try executable ?? self.executable()
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.standardOutput = try FileHandle(forWritingTo: outputFile)
    process.standardError = try FileHandle(forWritingTo: errorFile)
    try process.run()
    process.waitUntilExit()
    return Result(
      status: process.terminationStatus, output: try String(contentsOf: outputFile, encoding: .utf8),
      error: try String(contentsOf: errorFile, encoding: .utf8))
  }

  /// Starts segkit (or `executable`) without waiting; its standard output and error
  /// go to the pipes given, else nowhere; `environment` is added to this process's.
  static func start(
    _ arguments: [String], environment: [String: String] = [:], output: Pipe? = nil, error: Pipe? = nil, executable: URL? = nil
  ) throws -> Process {
    let process = Process()
    process.executableURL = try executable ?? self.executable()
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.standardOutput = output ?? FileHandle.nullDevice
    process.standardError = error ?? FileHandle.nullDevice
    try process.run()
    return process
  }
}
