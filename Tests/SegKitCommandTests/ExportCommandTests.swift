import Foundation
import SegKitInference
import SegKitModels
import SegKitTestSupport
import XCTest

/// `segkit export`: an ONNX file from a model name, and bad options that leave nothing behind.
final class ExportCommandTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  func testWritesAnONNXFileAndRefusesBadOptions() throws {
    let folder = try Oracle.temporaryDirectory("segkit-export-command")
    defer { try? FileManager.default.removeItem(at: folder) }
    let file = folder.appendingPathComponent("model.onnx")
    let written = try SegKitCommand.run(["export", "--model", "fcn8s_resnet18", "--classes", "3", "--out", file.path,
                                         "--height", "37", "--width", "45", "--argmax"])
    XCTAssertEqual(written.status, 0, written.error)
    XCTAssertTrue(written.output.contains("fcn8s_resnet18, 37×45, opset 17"), written.output)
    let check = try Oracle.run("""
      import onnx, sys
      model = onnx.load(sys.argv[1])
      onnx.checker.check_model(model, full_check=True)
      print([o.name for o in model.graph.output], {p.key: p.value for p in model.metadata_props}["classes"])
      """, arguments: [file.path])
    XCTAssertEqual(check.trimmingCharacters(in: .whitespacesAndNewlines), "['out', 'labels'] 3")

    let before = try Data(contentsOf: file)
    for (arguments, message) in [(["--opset", "9"], "--opset 9"), (["--height", "0"], "--height must be 1 to 16384"), (["--format", "tflite"], "--format tflite")] {
      let refused = try SegKitCommand.run(["export", "--model", "fcn8s_resnet18", "--out", file.path] + arguments)
      XCTAssertNotEqual(refused.status, 0)
      XCTAssertTrue(refused.error.contains(message), refused.error)
    }
    XCTAssertEqual(try Data(contentsOf: file), before, "an earlier file is untouched")
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["model.onnx"], "nothing partial")
  }

  /// --dynamic leaves batch, height and width open; a decision network exports from
  /// its file; a flow network, whose flow rescaling is computed from the size, refuses
  /// open sizes with a message.
  func testOpenSizesAndTheDecisionNetwork() throws {
    let folder = try Oracle.temporaryDirectory("segkit-export-open")
    defer { try? FileManager.default.removeItem(at: folder) }
    let open = folder.appendingPathComponent("open.onnx"), decision = folder.appendingPathComponent("decision.onnx")
    let written = try SegKitCommand.run(["export", "--model", "lraspp_mobilenet_v3_large", "--classes", "3", "--out", open.path,
                                         "--height", "40", "--width", "52", "--dynamic"])
    XCTAssertEqual(written.status, 0, written.error)
    XCTAssertTrue(written.output.contains("any batch and size"), written.output)
    let weights = folder.appendingPathComponent("decision.safetensors")
    try DecisionNetworkFile.write(try DecisionNetwork(featureChannels: 8, grid: Size2(2, 2)), to: weights)
    let exported = try SegKitCommand.run(["export", "--decision", weights.path, "--dynamic", "--out", decision.path])
    XCTAssertEqual(exported.status, 0, exported.error)
    let check = try Oracle.run("""
      import onnx, sys
      for path in sys.argv[1:]:
          model = onnx.load(path)
          onnx.checker.check_model(model, full_check=True)
          value = model.graph.input[0]
          print(value.name, [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim], [o.name for o in model.graph.output])
      """, arguments: [open.path, decision.path])
    XCTAssertEqual(check.trimmingCharacters(in: .whitespacesAndNewlines), """
      input ['batch', 3, 'height', 'width'] ['out']
      features ['batch', 8, 'height', 'width'] ['score']
      """)
    let refused = try SegKitCommand.run(["export", "--model", "flownets_thin", "--dynamic", "--out", folder.appendingPathComponent("flow.onnx").path])
    XCTAssertNotEqual(refused.status, 0)
    XCTAssertTrue(refused.error.contains("flownets_thin") && refused.error.contains("fixed --height"), refused.error)
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("flow.onnx").path))
  }
}
