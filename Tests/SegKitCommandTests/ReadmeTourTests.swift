import Foundation
import SegKitTestSupport
import XCTest

/// README.md's tour, run as written: the one ```sh block between the lines
/// `<!-- tour:begin -->` and `<!-- tour:end -->`, `\` continuations joined and `#`
/// comment lines dropped, each command run with bash in a scratch folder (which has
/// `configs` linked to the repository's, so `runs/tour/...` lands in the scratch
/// folder) with the built `segkit` first on PATH. Only these substitutions are made,
/// to keep it short and offline:
/// - `curl -LO URL` is replaced by making that file (the URL's basename) with the
///   oracle: torchvision's `lraspp_mobilenet_v3_large` (21 classes) with random weights;
/// - `segkit train` and `segkit vos train` get `--set` overrides that train a few steps;
/// - `segkit data synth` gets small sizes (per kind) where the line sets none;
/// - `segkit vos segment` gets `--steps 2`.
/// The first command that fails ends the test, with the command and its error output.
/// SEGKIT_TOUR_README names another file to read instead of the repository's README.md.
final class ReadmeTourTests: XCTestCase {
  static let begin = "<!-- tour:begin -->", end = "<!-- tour:end -->"

  /// Appended to the training commands: two steps of batch 2, validation and a
  /// checkpoint at the end.
  static let shortTraining = [
    "--set training_number_of_steps=2", "--set train_batch_size=2", "--set log_interval=1",
    "--set val_interval=0", "--set checkpoint_interval=2", "--set workers=0",
  ]

  /// Small datasets, per kind, still enough for the later commands (street: 8-frame
  /// snippets for the video; video: 2 validation sequences for vos segment and eval).
  static let smallData = [
    "semantic": ["--train": "8", "--val": "2"],
    "video": ["--train": "2", "--val": "2", "--frames": "4"],
    "flow": ["--train": "8", "--val": "2"],
    "street": ["--train": "2", "--val": "1", "--frames": "8"],
  ]

  static let weightsScript = """
    import sys, torch, torchvision
    torch.manual_seed(0)
    model = torchvision.models.segmentation.lraspp_mobilenet_v3_large(
        weights=None, weights_backbone=None, num_classes=21, aux_loss=None)
    torch.save(model.state_dict(), sys.argv[1])
    """

  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  /// The tour's commands: the sh block between the markers, continuations joined,
  /// comments and blank lines dropped.
  static func tourCommands(_ readme: String) throws -> [String] {
    let lines = readme.components(separatedBy: "\n")
    guard let first = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == begin }),
          let last = lines[first...].firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == end })
    else { throw Oracle.Failure(description: "README.md has no \(begin) … \(end) section") }
    let section = lines[(first + 1)..<last]
    guard let open = section.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).hasPrefix("```sh") }),
          let close = section[(open + 1)...].firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == "```" })
    else { throw Oracle.Failure(description: "README.md's tour section has no ```sh block") }
    var commands: [String] = [], pending = ""
    for line in section[(open + 1)..<close] {
      let trimmed = line.trimmingCharacters(in: .whitespaces)
      if pending.isEmpty && (trimmed.isEmpty || trimmed.hasPrefix("#")) { continue }
      if trimmed.hasSuffix("\\") {
        pending += String(trimmed.dropLast()).trimmingCharacters(in: .whitespaces) + " "
      } else {
        commands.append(pending + trimmed)
        pending = ""
      }
    }
    if !pending.isEmpty { commands.append(pending.trimmingCharacters(in: .whitespaces)) }
    return commands
  }

  /// The command with the test's substitutions, or nil for a download (made in `scratch`).
  static func substituted(_ command: String, scratch: URL) throws -> String? {
    let words = command.split(separator: " ").map(String.init)
    func has(_ option: String) -> Bool { words.contains(option) || words.contains { $0.hasPrefix(option + "=") } }
    if words.first == "curl" {
      guard let url = words.last(where: { $0.contains("://") }), let name = url.split(separator: "/").last
      else { throw Oracle.Failure(description: "a curl line without a URL: \(command)") }
      try Oracle.run(weightsScript, arguments: [scratch.appendingPathComponent(String(name)).path])
      return nil
    }
    guard words.first == "segkit" else { return command }
    let subcommand = words.dropFirst().prefix(while: { !$0.hasPrefix("-") }).joined(separator: " ")
    switch subcommand {
    case "train", "vos train":
      return ([command] + shortTraining).joined(separator: " ")
    case "data synth":
      guard let at = words.firstIndex(of: "--kind"), at + 1 < words.count, let sizes = smallData[words[at + 1]]
      else { return command }
      let extra = sizes.sorted { $0.key < $1.key }.filter { !has($0.key) }.map { "\($0.key) \($0.value)" }
      return ([command] + extra).joined(separator: " ")
    case "vos segment":
      return has("--steps") ? command : command + " --steps 2"
    default:
      return command
    }
  }

  func testTheTourRuns() throws {
    let started = Date()
    let readme = ProcessInfo.processInfo.environment["SEGKIT_TOUR_README"].map { URL(fileURLWithPath: $0) }
      ?? Oracle.packageRoot.appendingPathComponent("README.md")
    let commands = try Self.tourCommands(try String(contentsOf: readme, encoding: .utf8))
    XCTAssertGreaterThan(commands.count, 0, "the tour in \(readme.path) has no commands")
    let scratch = try Oracle.temporaryDirectory("segkit-tour")
    defer { try? FileManager.default.removeItem(at: scratch) }
    try FileManager.default.createSymbolicLink(
      at: scratch.appendingPathComponent("configs"), withDestinationURL: Oracle.packageRoot.appendingPathComponent("configs"))
    let bin = try SegKitCommand.executable().deletingLastPathComponent().path
    for command in commands {
      guard let line = try Self.substituted(command, scratch: scratch) else { continue }
      let commandStarted = Date()
      let result = try Self.bash(line, in: scratch, path: bin)
      print("tour: \(String(format: "%.1f", Date().timeIntervalSince(commandStarted))) s: \(line)")
      guard result.status == 0 else {
        XCTFail("the README tour's command failed (exit \(result.status)):\n  \(command)\nas run:\n  \(line)\n"
                + "error output:\n\(result.error)\noutput:\n\(result.output.suffix(2000))")
        return
      }
    }
    print("tour: \(commands.count) commands in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
  }

  /// Runs `line` with bash in `folder`, with `path` first on PATH.
  static func bash(_ line: String, in folder: URL, path: String) throws -> SegKitCommand.Result {
    let logs = try Oracle.temporaryDirectory("segkit-tour-logs")
    defer { try? FileManager.default.removeItem(at: logs) }
    let outputFile = logs.appendingPathComponent("stdout"), errorFile = logs.appendingPathComponent("stderr")
    try Data().write(to: outputFile)
    try Data().write(to: errorFile)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = ["-c", line]
    process.currentDirectoryURL = folder
    var environment = ProcessInfo.processInfo.environment
    environment["PATH"] = path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
    process.environment = environment
    process.standardOutput = try FileHandle(forWritingTo: outputFile)
    process.standardError = try FileHandle(forWritingTo: errorFile)
    try process.run()
    process.waitUntilExit()
    return SegKitCommand.Result(
      status: process.terminationStatus, output: try String(contentsOf: outputFile, encoding: .utf8),
      error: try String(contentsOf: errorFile, encoding: .utf8))
  }
}
