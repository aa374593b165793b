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
    let output = Pipe()
    let server = try SegKitCommand.start(["serve", "--run", run.url.path, "--port", "0", "--folder", folder.path], output: output)
    var printed = ""
    let deadline = Date().addingTimeInterval(60)
    while !printed.contains("\n"), Date() < deadline, server.isRunning {
      printed += String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
    }
    let line = try XCTUnwrap(printed.split(separator: "\n").first { $0.hasPrefix("serving") }, printed)
    XCTAssertTrue(line.hasPrefix("serving street on http://127.0.0.1:"), String(line))
    let url = String(line.split(separator: " ").last!).trimmingCharacters(in: CharacterSet(charactersIn: "/"))
    try Oracle.run(#"""
      import sys, urllib.request
      request = urllib.request.Request(sys.argv[1] + "/v1/segment?model=street", data=open(sys.argv[2], "rb").read(), method="POST")
      open(sys.argv[3], "wb").write(urllib.request.urlopen(request, timeout=60).read())
      """#, arguments: [url, image.path, root.appendingPathComponent("served.png").path])
    let served = try Data(contentsOf: root.appendingPathComponent("served.png"))
    XCTAssertEqual(served, try Data(contentsOf: root.appendingPathComponent("out/image.png")), "the service's PNG is predict's, byte for byte")
    XCTAssertGreaterThan(Set(try ImageIO.readLabel(root.appendingPathComponent("served.png")).pixels).count, 1)

    kill(server.processIdentifier, SIGINT)
    server.waitUntilExit()
    XCTAssertEqual(server.terminationStatus, 0)
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("sessions").path))

    for (arguments, words) in [
      (["--run", run.url.path, "--port", "70000"], "--port must be 0 to 65535"),
      (["--run", root.appendingPathComponent("nope").path], "--run"),
      (["--run", run.url.path, "--max-batch", "0"], "--max-batch must be 1 to 64"),
      (["--run", run.url.path, "--precision", "int8"], "--precision must be fp32 or bf16"),
      ([String](), "nothing to serve"),
    ] {
      let refused = try SegKitCommand.run(["serve"] + arguments)
      XCTAssertNotEqual(refused.status, 0, arguments.joined(separator: " "))
      XCTAssertTrue(refused.error.contains(words), "\(arguments): \(refused.error)")
    }
  }
}
