import Foundation
import SegKitTestSupport
import SegKitTraining
import XCTest

/// `segkit vos segment` end to end: one-shot fine-tuning per object, the DAVIS results
/// layout that `segkit vos eval` scores, timings, and skipping finished sequences.
final class VOSSegmentCommandTests: XCTestCase {
  func testSegmentsEverySequenceIntoTheResultsLayout() throws {
    let root = try Oracle.temporaryDirectory("segkit-vos-segment")
    defer { try? FileManager.default.removeItem(at: root) }
    Torch.manualSeed(2)
    let parent = root.appendingPathComponent("parent.safetensors")
    try StateDict(try ModelZoo.make("unet_resnet18", classes: 1).stateDict()).save(to: parent)
    for (year, objects) in [(2017, "2"), (2016, "1")] {
      let data = root.appendingPathComponent("davis\(year)"), results = root.appendingPathComponent("results\(year)")
      let synth = try SegKitCommand.run(["data", "synth", "--kind", "video", "--out", data.path, "--train", "0", "--val", "2",
                                         "--frames", "4", "--size", "48x32", "--objects", objects])
      XCTAssertEqual(synth.status, 0, synth.error)
      let arguments = ["vos", "segment", "--parent", parent.path, "--model", "unet_resnet18", "--davis", data.path,
                       "--year", "\(year)", "--out", results.path, "--steps", "3", "--device", "cpu"]
      let run = try SegKitCommand.run(arguments)
      XCTAssertEqual(run.status, 0, run.error)
      let dataset = year == 2016 ? try VideoDataset.davis2016(root: data, split: "val") : try VideoDataset.davis2017(root: data, split: "val")
      for sequence in dataset.sequences {
        for frame in sequence.frames {
          let name = try XCTUnwrap(frame.label?.url.lastPathComponent)
          let labels = try ImageIO.readLabel(results.appendingPathComponent("\(sequence.name)/\(name)"))
          XCTAssertEqual([labels.width, labels.height], [48, 32])
          XCTAssertTrue(Set(labels.pixels).isSubset(of: year == 2016 ? [0, 255] : [0, 1, 2]), "\(Set(labels.pixels))")
        }
      }
      let timings = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: results.appendingPathComponent("timing.json"))) as? [[String: Any]])
      XCTAssertEqual(timings.count, 2)
      XCTAssertEqual(timings.first?["objects"] as? Int, year == 2016 ? 1 : 2)
      let scored = try SegKitCommand.run(["vos", "eval", "--results", results.path, "--davis", data.path, "--year", "\(year)"])
      XCTAssertEqual(scored.status, 0, scored.error)
      XCTAssertTrue(scored.output.contains("J&F: "), scored.output)
      let again = try SegKitCommand.run(arguments)
      XCTAssertEqual(again.status, 0, again.error)
      XCTAssertTrue(again.output.contains("already done, skipped"), again.output)
      let kept = try JSONSerialization.jsonObject(with: Data(contentsOf: results.appendingPathComponent("timing.json"))) as? [[String: Any]]
      XCTAssertEqual(kept?.count, 2, "a rerun that skips keeps the earlier timings")
    }
    let bad = try SegKitCommand.run(["vos", "segment", "--parent", parent.path, "--model", "unet_resnet18", "--davis",
                                     root.appendingPathComponent("davis2016").path, "--year", "2016", "--out",
                                     root.appendingPathComponent("x").path, "--sequences", "nope"])
    XCTAssertNotEqual(bad.status, 0)
    XCTAssertTrue(bad.error.contains("'nope' is not a sequence"), bad.error)
  }
}
