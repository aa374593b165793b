import Foundation
import SegKitTestSupport
import XCTest

/// `segkit export`: an ONNX file from a model name, and bad options that leave nothing behind.
final class ExportCommandTests: XCTestCase {
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
    for (arguments, message) in [(["--opset", "9"], "--opset 9"), (["--dynamic"], "--dynamic"), (["--format", "tflite"], "--format tflite")] {
      let refused = try SegKitCommand.run(["export", "--model", "fcn8s_resnet18", "--out", file.path] + arguments)
      XCTAssertNotEqual(refused.status, 0)
      XCTAssertTrue(refused.error.contains(message), refused.error)
    }
    XCTAssertEqual(try Data(contentsOf: file), before, "an earlier file is untouched")
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["model.onnx"], "nothing partial")
  }
}
