import Foundation

/// The Python oracle the tests compare against: PyTorch and torchvision in the
/// project's virtual environment (scripts/setup-oracle.sh), or the interpreter
/// named by SEGKIT_ORACLE_PYTHON.
public enum Oracle {
  public struct Failure: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
  }

  /// Python for oracle scripts (interpolate it into a script; OracleTensors' prelude
  /// has it too): `randomize_norm(model, affine=True)` draws random running
  /// statistics for every `BatchNorm2d` of `model`, in `model.modules()` order, so
  /// that batch norm is really exercised: `running_mean` from U(-0.5, 0.5) and
  /// `running_var` from U(0.5, 1.5), then with `affine` `weight` from U(0.5, 1.5) and
  /// `bias` from U(-0.2, 0.2). It returns `model`. The draws come from torch's global
  /// generator, so a seeded script gets the same numbers each run.
  public static let randomizeNorm = """
    def randomize_norm(model, affine=True):
        import torch
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5); m.running_var.uniform_(0.5, 1.5)
                if affine:
                    m.weight.data.uniform_(0.5, 1.5); m.bias.data.uniform_(-0.2, 0.2)
        return model
    """

  /// The repository root, found from this file's location.
  public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  public static var python: String {
    ProcessInfo.processInfo.environment["SEGKIT_ORACLE_PYTHON"]
      ?? packageRoot.appendingPathComponent(".deps/oracle/bin/python").path
  }

  /// Runs a Python script with `arguments` (available as sys.argv[1:]) and returns its standard output.
  /// A missing oracle or a failing script throws with the script's error output.
  @discardableResult
  public static func run(_ script: String, arguments: [String] = []) throws -> String {
    guard FileManager.default.isExecutableFile(atPath: python) else {
      throw Failure(description: "the Python oracle is not installed at \(python): run scripts/setup-oracle.sh")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = ["-c", script] + arguments
    var environment = ProcessInfo.processInfo.environment
    environment["OMP_NUM_THREADS"] = environment["OMP_NUM_THREADS"] ?? "2"
    process.environment = environment
    // Errors go to a file so that neither pipe can fill up and stall the script.
    let errorFile = FileManager.default.temporaryDirectory.appendingPathComponent("oracle-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: errorFile.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: errorFile) }
    let output = Pipe()
    process.standardOutput = output
    process.standardError = try FileHandle(forWritingTo: errorFile)
    try process.run()
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      let errorText = (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
      throw Failure(description: "oracle script failed (exit \(process.terminationStatus)):\n\(errorText)")
    }
    return String(decoding: outputData, as: UTF8.self)
  }

  /// A fresh temporary directory, removed by the caller when done.
  public static func temporaryDirectory(_ label: String = "segkit-test") throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }
}
