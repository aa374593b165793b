import Foundation
import SegKitTestSupport
import SegKitTraining
import XCTest

/// `segkit vos eval` end to end on `segkit data synth --kind video` data.
final class VOSEvalCommandTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  func testWritesTheReferenceFilesAndJSON() throws {
    let root = try Oracle.temporaryDirectory("segkit-vos-eval")
    defer { try? FileManager.default.removeItem(at: root) }
    let data = root.appendingPathComponent("davis")
    let synth = try SegKitCommand.run(["data", "synth", "--kind", "video", "--out", data.path, "--train", "0", "--val", "2",
                                       "--frames", "5", "--image-size", "32x40", "--objects", "2"])
    XCTAssertEqual(synth.status, 0, synth.error)
    // The annotations as results, one object lost in the middle frames of the first sequence.
    let dataset = try VideoDataset.davis2017(root: data, split: "val")
    let results = root.appendingPathComponent("results")
    for sequence in dataset.sequences {
      try FileManager.default.createDirectory(at: results.appendingPathComponent(sequence.name), withIntermediateDirectories: true)
      for frame in sequence.frames {
        let url = try XCTUnwrap(frame.label?.url)
        var labels = try ImageIO.readLabel(url)
        if sequence.name == dataset.sequences[0].name {
          for i in labels.pixels.indices where labels.pixels[i] == 1 { labels.pixels[i] = 0 }
        }
        try ImageIO.writePNG(labels, to: results.appendingPathComponent("\(sequence.name)/\(url.lastPathComponent)"), palette: .pascal)
      }
    }
    let json = root.appendingPathComponent("scores.json")
    let result = try SegKitCommand.run(["vos", "eval", "--results", results.path, "--davis", data.path, "--year", "2017",
                                        "--json", json.path])
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(result.output.contains("J&F: 0.7500"), result.output)
    let global = try String(contentsOf: results.appendingPathComponent("global_results-val.csv"), encoding: .utf8)
    XCTAssertTrue(global.hasPrefix("J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n0.750,0.750,0.750,"), global)
    let perSequence = try String(contentsOf: results.appendingPathComponent("per-sequence_results-val.csv"), encoding: .utf8)
    XCTAssertEqual(perSequence.split(separator: "\n").count, 5)
    let scores = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
    XCTAssertEqual((scores["global"] as? [String: Double])?["J-Mean"], 0.75)
    XCTAssertEqual((scores["objects"] as? [[String: Any]])?.count, 4)

    let bad = try SegKitCommand.run(["vos", "eval", "--results", results.path, "--davis", data.path, "--year", "2018"])
    XCTAssertNotEqual(bad.status, 0)
    XCTAssertTrue(bad.error.contains("--year must be 2016 or 2017"), bad.error)
  }
}
