import Foundation
import SegKitTestSupport
import SegKitTraining
import XCTest

/// `segkit vos ablation --separate`: each variant trained on its own from one parent and
/// recipe, each scored on its own readout, the table marked "separately trained".
final class VOSAblationSeparateTests: XCTestCase {
  func testSeparateTrainsAndScoresEachVariant() throws {
    try SlowTest.skipInFastTier()
    let root = try Oracle.temporaryDirectory("segkit-ablation-separate")
    defer { try? FileManager.default.removeItem(at: root) }
    let data = root.appendingPathComponent("davis")
    let synth = try SegKitCommand.run(["data", "synth", "--kind", "video", "--out", data.path, "--train", "1", "--val", "1",
                                       "--frames", "3", "--image-size", "48x64", "--objects", "2"])
    XCTAssertEqual(synth.status, 0, synth.error)
    Torch.manualSeed(5)
    let parentFile = root.appendingPathComponent("osvos.safetensors")
    let parent = try StateDict(try ModelZoo.make("osvos_resnet18", classes: 1).stateDict())
    try parent.save(to: parentFile)
    let out = root.appendingPathComponent("ablation")
    let common = ["vos", "ablation", "--separate", "--parent", parentFile.path, "--model", "maskrnn_resnet18", "--davis", data.path,
                  "--year", "2017", "--device", "cpu", "--set", "train_crop_size=[48, 64]", "--set", "train_batch_size=1",
                  "--set", "training_number_of_steps=2", "--set", "workers=0", "--set", "val_split=", "--set", "log_interval=1"]
    let result = try SegKitCommand.run(common + ["--out", out.path])
    XCTAssertEqual(result.status, 0, result.error)

    let table = try String(contentsOf: out.appendingPathComponent("ablation.csv"), encoding: .utf8)
    let rows = table.split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
    XCTAssertEqual(rows.map { $0.first ?? "" }, ["Part", "appearance stream", "flow stream", "both streams", "both + localisation"], table)
    XCTAssertEqual(rows.first?.last, "Training", table)
    for row in rows.dropFirst() {
      XCTAssertEqual(row.count, 5, table)
      XCTAssertEqual(row.last, "separately trained", table)
      XCTAssertTrue(row.dropFirst().prefix(3).allSatisfy { Double($0).map { (0...1).contains($0) } ?? false }, table)
    }
    let report = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("ablation.json"))) as? [String: Any]
    XCTAssertEqual(report?["training"] as? String, "separately trained")
    XCTAssertEqual((report?["parts"] as? [Any])?.count, 4)

    // Four runs that differ: a one-stream variant trains only its stream (the other keeps
    // the parent's parameters), only the full variant has a localiser, the box loss only there.
    func weights(_ variant: String) throws -> StateDict {
      try StateDict.load(contentsOf: out.appendingPathComponent("runs/\(variant)/model.safetensors"))
    }
    let (appearance, flow, streams, full) = (try weights("appearance"), try weights("flow"), try weights("streams"), try weights("full"))
    func sameAsParent(_ state: StateDict, stream: String) throws -> (same: Int, differ: Int) {
      var counts = (same: 0, differ: 0)
      for entry in parent where !entry.name.contains("running_") && !entry.name.hasSuffix("num_batches_tracked") {
        guard let trained = state["\(stream).\(entry.name)"], trained.shape == entry.tensor.shape else { continue }
        if try trained.allClose(entry.tensor, rtol: 0, atol: 0) { counts.same += 1 } else { counts.differ += 1 }
      }
      return counts
    }
    XCTAssertEqual(try sameAsParent(appearance, stream: "flow").differ, 0, "the appearance variant leaves the flow stream")
    XCTAssertGreaterThan(try sameAsParent(appearance, stream: "appearance").differ, 0)
    XCTAssertEqual(try sameAsParent(flow, stream: "appearance").differ, 0, "the flow variant leaves the appearance stream")
    XCTAssertGreaterThan(try sameAsParent(flow, stream: "flow").differ, 0)
    XCTAssertGreaterThan(try sameAsParent(streams, stream: "flow").differ, 0)
    XCTAssertFalse(streams.names.contains { $0.hasPrefix("localiser.") })
    XCTAssertTrue(full.names.contains { $0.hasPrefix("localiser.") })
    let fullLog = try String(contentsOf: out.appendingPathComponent("runs/full/train.log"), encoding: .utf8)
    let appearanceLog = try String(contentsOf: out.appendingPathComponent("runs/appearance/train.log"), encoding: .utf8)
    XCTAssertTrue(fullLog.contains("box"), fullLog)
    XCTAssertFalse(appearanceLog.contains("flow_sides") || appearanceLog.contains("box"), appearanceLog)
    for part in ["appearance", "flow", "streams", "full"] {
      XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(part).path), part)
    }

    // The recipe may not pick the variant itself; --set needs --separate.
    let chosen = try SegKitCommand.run(common + ["--set", "maskrnn_variant=flow", "--out", root.appendingPathComponent("no").path])
    XCTAssertNotEqual(chosen.status, 0)
    XCTAssertTrue(chosen.error.contains("'maskrnn_variant' is set by --separate"), chosen.error)
    let stray = try SegKitCommand.run(["vos", "ablation", "--parent", parentFile.path, "--davis", data.path, "--year", "2017",
                                       "--out", root.appendingPathComponent("no2").path, "--set", "seed=1"])
    XCTAssertNotEqual(stray.status, 0)
    XCTAssertTrue(stray.error.contains("--config and --set are for --separate"), stray.error)
  }
}
