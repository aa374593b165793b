import Foundation
import SegKitInference
import SegKitTestSupport
import XCTest

final class CheckpointTests: XCTestCase {
  var root: URL!

  override func setUpWithError() throws { root = try Oracle.temporaryDirectory() }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  func makeModel() throws -> Sequential {
    Sequential(try Conv2d(3, 4, kernelSize: 3, padding: 1), try BatchNorm2d(4), ReLU(), try Conv2d(4, 2, kernelSize: 1))
  }

  /// A model and an SGD optimizer that has taken one step, so it holds momentum buffers.
  func trainedPair() throws -> (Sequential, Optimizer) {
    let model = try makeModel()
    let optimizer = try SGD(parameters: model.parameters(), momentum: 0.9)
    let loss = try model.forward(try Tensor.randn([2, 3, 5, 5])).square().mean()
    try loss.backward()
    try optimizer.step(learningRate: 0.1)
    return (model, optimizer)
  }

  func metadata(step: Int) throws -> CheckpointMetadata {
    CheckpointMetadata(
      step: step, epoch: 2, dataPosition: 48, seed: 7, configHash: "0123456789abcdef",
      schedule: try LearningRateSchedule(.poly(base: 0.007, maxSteps: 1000, power: 0.9), slowStartSteps: 10),
      extra: ["best_miou": "0.5"])
  }

  func testRoundTripRestoresModelOptimizerAndMetadata() throws {
    let (model, optimizer) = try trainedPair()
    let url = root.appendingPathComponent("c.safetensors")
    try Checkpoint(model: model, optimizer: optimizer, metadata: try metadata(step: 123)).write(to: url)

    let back = try Checkpoint.read(contentsOf: url)
    XCTAssertEqual(back.model.names, try model.stateDict().map(\.0))
    XCTAssertEqual(back.optimizer.map(\.0), try optimizer.stateTensors().map(\.0))
    XCTAssertFalse(back.optimizer.isEmpty)
    let m = back.metadata
    XCTAssertEqual([m.step, m.epoch, m.dataPosition], [123, 2, 48])
    XCTAssertEqual(m.seed, 7)
    XCTAssertEqual(m.configHash, "0123456789abcdef")
    XCTAssertEqual(m.extra, ["best_miou": "0.5"])
    let schedule = try XCTUnwrap(m.schedule)
    for step in [0, 5, 10, 500, 1000] {
      XCTAssertEqual(schedule(step), try metadata(step: 0).schedule!(step))
    }

    let fresh = try makeModel()
    let target = try SGD(parameters: fresh.parameters(), momentum: 0.9)
    try back.restore(model: fresh, optimizer: target)
    for ((name, a), (_, b)) in zip(try model.stateDict(), try fresh.stateDict()) {
      XCTAssertTrue(try a.allClose(b, rtol: 0, atol: 0), name)
    }
    for ((name, a), (_, b)) in zip(try optimizer.stateTensors(), try target.stateTensors()) {
      XCTAssertTrue(try a.allClose(b, rtol: 0, atol: 0), name)
    }
  }

  /// The file is ordinary safetensors: the reference reader sees the model's names,
  /// the "optimizer." entries and the metadata.
  func testReadableByTheSafetensorsPackage() throws {
    let (model, optimizer) = try trainedPair()
    let url = root.appendingPathComponent("c.safetensors")
    try Checkpoint(model: model, optimizer: optimizer, metadata: try metadata(step: 9)).write(to: url)
    let output = try Oracle.run("""
      import json, sys
      from safetensors import safe_open
      with safe_open(sys.argv[1], framework="numpy") as f:
          print(json.dumps({"keys": sorted(f.keys()), "metadata": f.metadata()}))
      """, arguments: [url.path])
    struct Contents: Decodable {
      let keys: [String]
      let metadata: [String: String]
    }
    let contents = try JSONDecoder().decode(Contents.self, from: Data(output.utf8))
    let expected = try model.stateDict().map(\.0) + optimizer.stateTensors().map { "optimizer." + $0.0 }
    XCTAssertEqual(contents.keys, expected.sorted())
    XCTAssertEqual(contents.metadata["step"], "9")
    XCTAssertEqual(contents.metadata["data_position"], "48")
    XCTAssertNotNil(contents.metadata["schedule"])
  }

  func testStoreKeepsTheLastAndSkipsUnreadableOnes() throws {
    let model = try makeModel()
    let store = CheckpointStore(directory: root.appendingPathComponent("checkpoints"), keep: 3)
    for step in [100, 200, 300, 400, 1_500_000] {
      try store.save(try Checkpoint(model: model, optimizer: nil, metadata: try metadata(step: step)))
    }
    XCTAssertEqual(store.saved().map(\.step), [300, 400, 1_500_000])
    XCTAssertEqual(store.url(forStep: 300).lastPathComponent, "step-000300.safetensors")

    // Truncate the newest, as a full disk or a copy gone wrong could; make the next one not a checkpoint.
    let newest = store.url(forStep: 1_500_000)
    let bytes = try Data(contentsOf: newest)
    try bytes.prefix(bytes.count / 2).write(to: newest)
    try StateDict([("w", try Tensor.ones([2]))]).save(to: store.url(forStep: 400))
    var warnings: [String] = []
    let latest = try XCTUnwrap(store.latest { warnings.append($0) })
    XCTAssertEqual(latest.checkpoint.metadata.step, 300)
    XCTAssertEqual(warnings.count, 2)
    XCTAssertTrue(warnings[0].contains(newest.path), warnings[0])
    XCTAssertTrue(warnings[1].contains("not a SegKit training checkpoint"), warnings[1])

    // A leftover temporary file from an interrupted write is cleared by the next save.
    let leftover = store.directory.appendingPathComponent(".step-000500.safetensors.ABC.partial")
    try Data("partial".utf8).write(to: leftover)
    try store.save(try Checkpoint(model: model, optimizer: nil, metadata: try metadata(step: 2_000_000)))
    XCTAssertFalse(FileManager.default.fileExists(atPath: leftover.path))
    XCTAssertEqual(store.saved().map(\.step), [400, 1_500_000, 2_000_000])

    // Resumed from step 300 past an unreadable step 1,500,000: the new checkpoints are kept
    // (the later, unreadable one is neither counted nor deleted), so the next resume finds them.
    let resumed = CheckpointStore(directory: root.appendingPathComponent("resumed"), keep: 2)
    try resumed.save(try Checkpoint(model: model, optimizer: nil, metadata: try metadata(step: 900)))
    try Data("cut off".utf8).write(to: resumed.url(forStep: 900))
    for step in [400, 500, 600] {
      try resumed.save(try Checkpoint(model: model, optimizer: nil, metadata: try metadata(step: step)))
    }
    XCTAssertEqual(resumed.saved().map(\.step), [500, 600, 900])
    XCTAssertEqual(resumed.latest()?.checkpoint.metadata.step, 600)
  }

  /// Metadata near 2^63 (which made the loop's step arithmetic trap on --resume) is refused on reading.
  func testHugeMetadataIsRefused() throws {
    let url = root.appendingPathComponent("huge.safetensors")
    for key in ["step", "epoch", "data_position"] {
      var strings = ["segkit.format": "checkpoint-1", "step": "3", "epoch": "0", "data_position": "0", "seed": "1"]
      strings[key] = "9223372036854775000"
      try SafeTensors.write(StateDict([("w", try Tensor.ones([1]))]), metadata: strings, to: url)
      XCTAssertThrowsError(try Checkpoint.read(contentsOf: url)) {
        XCTAssertTrue("\($0)".contains("checkpoint metadata '\(key)' is missing or not an integer in [0, 2^40]"), "\($0)")
      }
    }
  }

  /// A second Ctrl-C exits at once; the files still being written are removed first.
  func testPartialFilesAreRemovedOnRequest() throws {
    let partial = root.appendingPathComponent(".model.safetensors.X.partial")
    try Data("half".utf8).write(to: partial)
    PartialFiles.register(partial)
    PartialFiles.removeAll()
    XCTAssertFalse(FileManager.default.fileExists(atPath: partial.path))
  }

  func testEmptyStoreHasNoLatest() {
    XCTAssertNil(CheckpointStore(directory: root.appendingPathComponent("none")).latest())
  }

  func testModelNameClashingWithOptimizerPrefixIsAnError() throws {
    let checkpoint = Checkpoint(
      model: try StateDict([("optimizer.weight", try Tensor.ones([1]))]), metadata: CheckpointMetadata(step: 1))
    XCTAssertThrowsError(try checkpoint.write(to: root.appendingPathComponent("x.safetensors"))) {
      XCTAssertTrue("\($0)".contains("optimizer.weight"))
    }
  }
}
