import Foundation
import SegKitTestSupport
import SegKitTraining
import XCTest

/// `segkit convert-weights`: a torch.save file (legacy format) to safetensors, exactly;
/// a truncated input is an error naming it, with no partial output.
final class ConvertWeightsCommandTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  func testConvertsExactlyAndLeavesNoPartialOutput() throws {
    let scratch = try Oracle.temporaryDirectory("segkit-convert")
    defer { try? FileManager.default.removeItem(at: scratch) }
    let pth = scratch.appendingPathComponent("mixed.pth"), reference = scratch.appendingPathComponent("reference.safetensors")
    try Oracle.run(#"""
      import sys, collections, torch
      from safetensors.torch import save_file
      torch.manual_seed(0)
      state = collections.OrderedDict([
          ("conv.weight", torch.randn(4, 3, 3, 3)), ("bn.num_batches_tracked", torch.tensor(7)),
          ("half", torch.randn(5).half()), ("mask", torch.rand(2, 3) > 0.5), ("view", torch.arange(12.).view(3, 4)[1:])])
      torch.save(state, sys.argv[1], _use_new_zipfile_serialization=False)
      save_file({k: v.contiguous() for k, v in state.items()}, sys.argv[2])
      """#, arguments: [pth.path, reference.path])

    let output = scratch.appendingPathComponent("out.safetensors")
    let good = try SegKitCommand.run(["convert-weights", pth.path, output.path])
    XCTAssertEqual(good.status, 0, good.error)
    XCTAssertTrue(good.output.contains("wrote 5 tensors"), good.output)
    let converted = try StateDict.load(contentsOf: output), expected = try StateDict.load(contentsOf: reference)
    XCTAssertEqual(converted.names, ["conv.weight", "bn.num_batches_tracked", "half", "mask", "view"])
    for (name, tensor) in expected {
      let mine = try XCTUnwrap(converted[name], name)
      XCTAssertEqual(mine.dtype, tensor.dtype, name)
      XCTAssertEqual(mine.shape, tensor.shape, name)
      XCTAssertTrue(try mine.data() == tensor.data(), name)
    }

    let corrupt = scratch.appendingPathComponent("corrupt.pth")
    try Data(try Data(contentsOf: pth).prefix(300)).write(to: corrupt)
    let failedOutput = scratch.appendingPathComponent("corrupt.safetensors")
    let bad = try SegKitCommand.run(["convert-weights", corrupt.path, failedOutput.path])
    XCTAssertNotEqual(bad.status, 0)
    XCTAssertTrue(bad.error.contains(corrupt.path), bad.error)
    XCTAssertFalse(FileManager.default.fileExists(atPath: failedOutput.path))
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path).sorted(),
                   ["corrupt.pth", "mixed.pth", "out.safetensors", "reference.safetensors"], "no partial file is left behind")

    // The input is never the output (by name or through a link); an existing output needs --force.
    let original = try Data(contentsOf: pth)
    let link = scratch.appendingPathComponent("link.pth")
    try FileManager.default.createSymbolicLink(at: link, withDestinationURL: pth)
    for target in [pth, link] {
      let onItself = try SegKitCommand.run(["convert-weights", pth.path, target.path, "--force"])
      XCTAssertNotEqual(onItself.status, 0)
      XCTAssertTrue(onItself.error.contains("is the input itself"), onItself.error)
    }
    XCTAssertEqual(try Data(contentsOf: pth), original)
    let existing = try SegKitCommand.run(["convert-weights", pth.path, reference.path])
    XCTAssertNotEqual(existing.status, 0)
    XCTAssertTrue(existing.error.contains("\(reference.path) exists: choose another name, or --force"), existing.error)
    XCTAssertEqual(try SegKitCommand.run(["convert-weights", pth.path, reference.path, "--force"]).status, 0)
  }
}
