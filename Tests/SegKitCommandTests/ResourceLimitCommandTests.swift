import Foundation
import SegKitInference
import SegKitModels
import SegKitTestSupport
import SegKitTraining
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// Nothing hangs and nothing balloons: a rendezvous with a listener that never answers
/// ends at --dist-timeout naming the address; inputs whose declared sizes would take
/// gigabytes are refused before they allocate, with the estimate; zero processes per
/// node is an error, not one process.
final class ResourceLimitCommandTests: XCTestCase {
  var root: URL!

  override func setUpWithError() throws {
    root = try Oracle.temporaryDirectory("segkit-limits")
    try SlowTest.skipInFastTier()
  }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  func testZeroProcessesPerNodeIsRefused() throws {
    for (option, value) in [("--nproc-per-node", "0"), ("--nnodes", "0")] {
      let refused = try SegKitCommand.run(["train", "--config", "none.yaml", option, value])
      XCTAssertEqual(refused.status, 64, refused.error)
      XCTAssertTrue(refused.error.contains("\(option) must be at least 1, got 0"), refused.error)
    }
  }

  /// A port held by a listener that accepts connections and never answers: the worker
  /// gives up after --dist-timeout (c10d's store client alone would wait for ever).
  func testARendezvousWithASilentListenerEndsAtTheTimeout() throws {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    XCTAssertGreaterThanOrEqual(listener, 0)
    defer { close(listener) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
      pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) == 0 && getsockname(listener, $0, &length) == 0 }
    }
    XCTAssertTrue(bound)
    XCTAssertEqual(listen(listener, 16), 0)  // the kernel completes connections; nobody reads them
    let port = Int(UInt16(bigEndian: address.sin_port))
    let errors = Pipe()
    let start = Date()
    let worker = try SegKitCommand.start(
      ["train", "--config", "none.yaml", "--run", root.appendingPathComponent("run").path, "--plain", "--dist-timeout", "3"],
      environment: ["RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": String(port)],
      error: errors)
    let deadline = Date().addingTimeInterval(60)
    while worker.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
    if worker.isRunning { worker.terminate() }
    worker.waitUntilExit()
    let seconds = Date().timeIntervalSince(start)
    let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    XCTAssertLessThan(seconds, 30, "the worker waited \(seconds) s")
    XCTAssertEqual(worker.terminationStatus, 1, message)
    XCTAssertTrue(message.contains("127.0.0.1:\(port)"), message)
  }

  func testDecisionTrainingThatWouldNeedGigabytesIsRefused() throws {
    let samples = root.appendingPathComponent("samples.safetensors")
    // A million feature channels: 4 MB of features, 14 GB of network to train (its weights,
    // gradients and Adam's moments).
    try DecisionSamples(features: try Tensor.zeros([1, 1_000_000, 1, 1]), scores: try Tensor([90], shape: [1]),
                        distances: try Tensor([1], shape: [1])).write(to: samples)
    let small = root.appendingPathComponent("small.safetensors")
    try DecisionSamples(features: try Tensor.zeros([4, 8, 2, 2]), scores: try Tensor([90, 91, 92, 93], shape: [4]),
                        distances: try Tensor([1, 1, 2, 2], shape: [4])).write(to: small)
    let out = root.appendingPathComponent("decision")
    for (file, grid, estimate) in [(samples, "4x8", "14.3 GB"), (small, "64x64", "6.5 GB")] {
      let refused = try SegKitCommand.run(["dvs", "train-decision", "--train", file.path, "--val", file.path, "--out", out.path,
                                           "--grid", grid, "--epochs", "1", "--memory-limit", "1G"])
      XCTAssertEqual(refused.status, 1, refused.error)
      XCTAssertTrue(refused.error.contains("needs about \(estimate), more than --memory-limit 1.1 GB"), refused.error)
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("decision.safetensors").path))
  }

  /// Under a 3 GB address-space limit the default cap (what the process can get) refuses
  /// a 16384² export; --memory-limit refuses an 8192² PNG of 200 kB before it is decoded.
  func testExportAndPredictSizesAreEstimatedFirst() throws {
    let onnx = root.appendingPathComponent("model.onnx")
    let export = try SegKitCommand.run(["/bin/sh", "-c", "ulimit -v 3000000 && exec \"$0\" \"$@\"", try SegKitCommand.executable().path,
                                        "export", "--model", "fcn8s_resnet18", "--classes", "3", "--out", onnx.path,
                                        "--height", "16384", "--width", "16384"], executable: URL(fileURLWithPath: "/usr/bin/env"))
    XCTAssertEqual(export.status, 1, export.error)
    XCTAssertTrue(export.error.contains("exporting fcn8s_resnet18 at 16384×16384 needs about"), export.error)
    XCTAssertTrue(export.error.contains("the address-space limit (ulimit -v)"), export.error)
    XCTAssertFalse(FileManager.default.fileExists(atPath: onnx.path))

    let big = root.appendingPathComponent("big.png")
    try Oracle.run("""
      import sys, numpy as np
      from PIL import Image
      Image.fromarray(np.full((8192, 8192, 3), 128, np.uint8)).save(sys.argv[1], optimize=True)
      """, arguments: [big.path])
    let out = root.appendingPathComponent("predictions")
    let predict = try SegKitCommand.run(["predict", "--model", "fcn8s_resnet18", "--classes", "3", "--input", big.path,
                                         "--out", out.path, "--memory-limit", "1G"])
    XCTAssertEqual(predict.status, 1, predict.error)
    XCTAssertTrue(predict.error.contains("\(big.path): segmenting 8192×8192 pixels needs about"), predict.error)
    XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? [], [], "nothing written")
  }
}
