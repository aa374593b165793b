import Foundation
import SegKitInference
import SegKitTestSupport
import XCTest

/// Inference reads a run's model.json and newest checkpoint only: a run without
/// config.yaml evaluates with the settings its manifest carries, and a run of another
/// task is refused with the commands that serve it.
final class RunManifestCommandTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  func testARunWithoutConfigYamlEvaluatesFromItsManifest() throws {
    let fixture = try EvalCommandTests.fixture()
    let run = fixture.dir.appendingPathComponent("manifest-only-run")
    try? FileManager.default.removeItem(at: run)
    try FileManager.default.createDirectory(at: run.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
    var manifest = ModelManifest(model: "lraspp_mobilenet_v3_large", classes: 6)
    manifest.inference = ModelManifest.InferenceDefaults(
      scales: [0.75, 1.25], flip: true, dataset: "pascal_voc", datasetDir: fixture.root.path, valSplit: "val", ignoreLabel: 255)
    try manifest.write(to: RunLayout(run).manifestURL)
    let store = CheckpointStore(directory: run.appendingPathComponent("checkpoints"), keep: 0)
    try store.save(Checkpoint(model: try StateDict.load(contentsOf: fixture.weights), metadata: CheckpointMetadata(step: 10)))
    XCTAssertFalse(FileManager.default.fileExists(atPath: run.appendingPathComponent("config.yaml").path))

    let fromRun = fixture.dir.appendingPathComponent("manifest-run.json")
    let result = try SegKitCommand.run(["eval", "--run", run.path, "--device", "cpu", "--json", fromRun.path])
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(result.output.contains("scales 0.75,1.25, flip yes"), result.output)
    let direct = fixture.dir.appendingPathComponent("manifest-direct.json")
    let plain = try SegKitCommand.run([
      "eval", "--model", "lraspp_mobilenet_v3_large", "--weights", fixture.weights.path, "--dataset", "voc",
      "--dataset-dir", fixture.root.path, "--split", "val", "--device", "cpu", "--scales", "0.75,1.25", "--flip", "--json", direct.path,
    ])
    XCTAssertEqual(plain.status, 0, plain.error)
    XCTAssertEqual(
      try JSONDecoder().decode(SegmentationScores.self, from: Data(contentsOf: fromRun)),
      try JSONDecoder().decode(SegmentationScores.self, from: Data(contentsOf: direct)))
  }

  func testARunOfAnotherTaskNamesTheCommandsThatServeIt() throws {
    let run = try Oracle.temporaryDirectory("segkit-flow-run")
    defer { try? FileManager.default.removeItem(at: run) }
    try ModelManifest(model: "flownets_thin", task: .flow, classes: 2).write(to: RunLayout(run).manifestURL)
    for command in [["eval"], ["predict", "--input", run.path]] {
      let result = try SegKitCommand.run(command + ["--run", run.path])
      XCTAssertNotEqual(result.status, 0)
      XCTAssertTrue(result.error.contains("a flow run (flownets_thin)"), result.error)
      XCTAssertTrue(result.error.contains("segkit flow compute") && result.error.contains("segkit dvs"), result.error)
      XCTAssertFalse(result.error.contains("unknown model"), result.error)
    }
  }

  /// DVSNet uses one segmentation network throughout: a warp path trained on one run's
  /// logits is refused beside another run, naming both.
  func testAWarpPathTrainedOnAnotherSegmentationRunIsRefused() throws {
    let root = try Oracle.temporaryDirectory("segkit-warp-teacher")
    defer { try? FileManager.default.removeItem(at: root) }
    var options = Synthetic.StreetOptions()
    (options.trainSnippets, options.valSnippets, options.frames, options.annotatedFrame, options.width, options.height) = (0, 1, 3, 2, 64, 32)
    try Synthetic.writeStreet(to: root.appendingPathComponent("street"), options: options)
    func run(_ name: String, _ manifest: ModelManifest, _ network: Module) throws -> URL {
      let folder = root.appendingPathComponent(name)
      try FileManager.default.createDirectory(at: folder.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
      try manifest.write(to: RunLayout(folder).manifestURL)
      let store = CheckpointStore(directory: folder.appendingPathComponent("checkpoints"), keep: 0)
      try store.save(Checkpoint(model: try StateDict(try network.stateDict()), metadata: CheckpointMetadata(step: 1)))
      return folder
    }
    let segmentation = try run("seg", ModelManifest(model: "fcn32s_resnet18", classes: 19), try ModelZoo.make("fcn32s_resnet18", classes: 19))
    var flowManifest = ModelManifest(model: "flownets_thin", task: .flow, classes: 2)
    flowManifest.inference = ModelManifest.InferenceDefaults(warpAt: "output", segmentationRun: "/elsewhere/street-seg")
    let flow = try run("warp", flowManifest, try FlowNetS(widths: .thin))
    let arguments = ["dvs", "eval", "--run", segmentation.path, "--flow", flow.path, "--cityscapes", root.appendingPathComponent("street").path,
                     "--policy", "every-frame", "--device", "cpu"]
    let refused = try SegKitCommand.run(arguments)
    XCTAssertNotEqual(refused.status, 0)
    XCTAssertTrue(refused.error.contains("/elsewhere/street-seg") && refused.error.contains(segmentation.standardizedFileURL.path), refused.error)
    flowManifest.inference?.segmentationRun = segmentation.standardizedFileURL.path
    try flowManifest.write(to: RunLayout(flow).manifestURL)
    let accepted = try SegKitCommand.run(arguments)
    XCTAssertEqual(accepted.status, 0, accepted.error)
  }
}
