import Foundation
import SegKitInference
import SegKitTestSupport
import XCTest

/// `segkit serve` as a user starts it: the label PNG it answers is byte for byte the one
/// `segkit predict` writes for the same run and image; Ctrl-C stops it and its session
/// files go; bad flags are refused naming the flag.
final class ServeCommandTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  func testServedLabelsAreThoseOfPredictAndCtrlCStopsIt() throws {
    let root = try Oracle.temporaryDirectory("segkit-serve-command")
    defer { try? FileManager.default.removeItem(at: root) }
    let run = RunLayout(root.appendingPathComponent("street"))
    try FileManager.default.createDirectory(at: run.checkpointsURL, withIntermediateDirectories: true)
    Torch.manualSeed(5)
    let manifest = ModelManifest(model: "lraspp_mobilenet_v3_large", classes: 3)
    let weights = try StateDict(try ModelLoader.build(manifest).stateDict().map { name, tensor in
      (name, name.contains("classifier") && name.hasSuffix(".bias") ? try tensor * 0.0 : tensor)  // varied classes
    })
    try manifest.write(to: run.manifestURL)
    try Checkpoint(model: weights, metadata: CheckpointMetadata(step: 1)).write(to: run.checkpointsURL.appendingPathComponent("step-000001.safetensors"))
    let sequence = Synthetic.videoSequence(seed: 2, split: "val", index: 0, frames: 1, width: 120, height: 88, objects: 2)
    let image = root.appendingPathComponent("image.jpg")
    try ImageIO.writeJPEG(sequence.frames[0], to: image)

    let predicted = try SegKitCommand.run(["predict", "--run", run.url.path, "--input", image.path, "--out", root.appendingPathComponent("out").path])
    XCTAssertEqual(predicted.status, 0, predicted.error)

    let folder = root.appendingPathComponent("service")
    let served = try serveOneImage(["--run", run.url.path, "--folder", folder.path], image: image, stoppedWithCtrlC: true)
    XCTAssertEqual(served, try Data(contentsOf: root.appendingPathComponent("out/image.png")), "the service's PNG is predict's, byte for byte")
    XCTAssertGreaterThan(Set(try ImageIO.readLabel(root.appendingPathComponent("out/image.png")).pixels).count, 1)
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("sessions").path))

    // int8, calibrated on the same image as predict calibrates on: the same quantised model, the same labels.
    let predicted8 = try SegKitCommand.run(["predict", "--run", run.url.path, "--input", image.path, "--precision", "int8",
                                            "--out", root.appendingPathComponent("out8").path])
    XCTAssertEqual(predicted8.status, 0, predicted8.error)
    let served8 = try serveOneImage(["--run", run.url.path, "--precision", "int8", "--calibration", image.path], image: image)
    XCTAssertEqual(served8, try Data(contentsOf: root.appendingPathComponent("out8/image.png")), "int8: the service's PNG is predict's")

    for (arguments, words) in [
      (["--run", run.url.path, "--port", "70000"], "--port must be 0 to 65535"),
      (["--run", root.appendingPathComponent("nope").path], "--run"),
      (["--run", run.url.path, "--max-batch", "0"], "--max-batch must be 1 to 64"),
      (["--run", run.url.path, "--precision", "int4"], "--precision must be fp32, bf16 or int8"),
      (["--run", run.url.path, "--precision", "int8"], "--precision int8 needs --calibration"),
      (["--run", run.url.path, "--calibration", image.path], "--calibration goes with --precision int8"),
      (["--run", run.url.path, "--precision", "int8", "--calibration", root.appendingPathComponent("nope").path], "--calibration"),
      ([String](), "nothing to serve"),
    ] {
      let refused = try SegKitCommand.run(["serve"] + arguments)
      XCTAssertNotEqual(refused.status, 0, arguments.joined(separator: " "))
      XCTAssertTrue(refused.error.contains(words), "\(arguments): \(refused.error)")
    }
  }

  /// Starts `segkit serve` with `arguments` on a free port, posts `image` and returns the
  /// label PNG it answers; stops the service with Ctrl-C (checking it exits cleanly) or SIGTERM.
  private func serveOneImage(_ arguments: [String], image: URL, stoppedWithCtrlC: Bool = false) throws -> Data {
    let output = Pipe()
    let server = try SegKitCommand.start(["serve", "--port", "0"] + arguments, output: output)
    defer { if server.isRunning { server.terminate(); server.waitUntilExit() } }
    var printed = ""
    let deadline = Date().addingTimeInterval(120)
    while !printed.contains("\n"), Date() < deadline, server.isRunning {
      printed += String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
    }
    let line = try XCTUnwrap(printed.split(separator: "\n").first { $0.hasPrefix("serving") }, printed)
    XCTAssertTrue(line.hasPrefix("serving street on http://127.0.0.1:"), String(line))
    let url = String(line.split(separator: " ").last!).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
    let answer = image.deletingLastPathComponent().appendingPathComponent("served.png")
    try Oracle.run(#"""
      import sys, urllib.request
      request = urllib.request.Request(sys.argv[1] + "/v1/segment?model=street", data=open(sys.argv[2], "rb").read(), method="POST")
      open(sys.argv[3], "wb").write(urllib.request.urlopen(request, timeout=60).read())
      """#, arguments: [url, image.path, answer.path])
    if stoppedWithCtrlC {
      kill(server.processIdentifier, SIGINT)
      server.waitUntilExit()
      XCTAssertEqual(server.terminationStatus, 0)
    }
    return try Data(contentsOf: answer)
  }
}
