import Foundation
import SegKitTestSupport
import SegKitTraining
import XCTest

/// `segkit train` end to end: Ctrl-C, and bad input that must leave nothing behind.
final class TrainCommandTests: XCTestCase {
  var root: URL!

  override func setUpWithError() throws {
    root = try Oracle.temporaryDirectory("segkit-train-command")
    try SlowTest.skipInFastTier()
  }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  func segkit(_ arguments: [String]) throws -> SegKitCommand.Result {
    let result = try SegKitCommand.run(arguments)
    return result
  }

  /// A small synthetic VOC-layout dataset written by `segkit data synth`, and a config for it.
  func fixture(steps: Int = 4) throws -> (dataset: URL, config: URL) {
    let dataset = root.appendingPathComponent("data")
    let synth = try segkit(["data", "synth", "--kind", "semantic", "--out", dataset.path, "--train", "4", "--val", "0",
                            "--image-size", "64", "--seed", "1"])
    XCTAssertEqual(synth.status, 0, synth.error)
    let config = root.appendingPathComponent("config.yaml")
    try """
      dataset: pascal_voc
      dataset_dir: \(dataset.path)
      val_split: ""
      model: fcn32s_resnet18
      train_crop_size: [64, 64]
      train_batch_size: 2
      training_number_of_steps: \(steps)
      log_interval: 1
      workers: 0
      """.write(to: config, atomically: true, encoding: .utf8)
    return (dataset, config)
  }

  /// Ctrl-C: `segkit train` writes a checkpoint, says how to resume, and exits with 130.
  func testInterruptWritesACheckpoint() throws {
    let (_, config) = try fixture(steps: 10_000)
    let run = root.appendingPathComponent("run")
    let output = Pipe()
    let process = try SegKitCommand.start(["train", "--config", config.path, "--run", run.path], output: output)
    let log = run.appendingPathComponent("train.log")
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline && !((try? String(contentsOf: log, encoding: .utf8))?.contains("step 2/") ?? false) {
      Thread.sleep(forTimeInterval: 0.1)
    }
    kill(process.processIdentifier, SIGINT)
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 130, text)
    XCTAssertTrue(text.contains("continue with: segkit train --resume \(run.path)"), text)
    let saved = CheckpointStore(directory: run.appendingPathComponent("checkpoints")).saved()
    XCTAssertEqual(saved.count, 1)
    XCTAssertGreaterThanOrEqual(saved.first?.step ?? 0, 2)
  }

  func testBadInputIsAClearErrorAndLeavesNothingBehind() throws {
    let (_, config) = try fixture()
    let run = root.appendingPathComponent("run").path

    var result = try segkit(["train", "--config", config.path, "--set", "learning_rat=0.1", "--run", run])
    XCTAssertNotEqual(result.status, 0)
    XCTAssertTrue(result.error.contains("unknown setting 'learning_rat'"), result.error)
    XCTAssertFalse(FileManager.default.fileExists(atPath: run))

    result = try segkit(["train", "--config", config.path, "--set", "dataset_dir=/nonexistent/data", "--run", run])
    XCTAssertNotEqual(result.status, 0)
    XCTAssertTrue(result.error.contains("/nonexistent/data"), result.error)
    XCTAssertFalse(FileManager.default.fileExists(atPath: run))

    // A key of the other task names its task.
    result = try segkit(["train", "--config", config.path, "--set", "task=foreground", "--set", "class_weights=[1, 2]",
                         "--run", run])
    XCTAssertNotEqual(result.status, 0)
    XCTAssertTrue(result.error.contains("'class_weights' (a setting of task semantic"), result.error)
    XCTAssertFalse(FileManager.default.fileExists(atPath: run))

    let aFile = root.appendingPathComponent("a-file")
    try Data().write(to: aFile)
    result = try segkit(["train", "--config", config.path, "--run", aFile.appendingPathComponent("run").path])
    XCTAssertNotEqual(result.status, 0)
    XCTAssertTrue(result.error.contains("is a file, not a folder"), result.error)

    // An existing run is refused, untouched.
    let existing = root.appendingPathComponent("existing")
    try FileManager.default.createDirectory(at: existing.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
    try "precious".write(to: existing.appendingPathComponent("train.log"), atomically: true, encoding: .utf8)
    result = try segkit(["train", "--config", config.path, "--run", existing.path])
    XCTAssertNotEqual(result.status, 0)
    XCTAssertTrue(result.error.contains("is not empty"), result.error)
    XCTAssertEqual(try String(contentsOf: existing.appendingPathComponent("train.log"), encoding: .utf8), "precious")
  }

  /// `segkit vos train`: a parent network on DAVIS-layout data with the command's
  /// defaults (task foreground); a run whose manifest `vos segment` reads; a config
  /// of another task is refused before anything is written.
  func testVOSTrainTrainsAParent() throws {
    let data = root.appendingPathComponent("davis")
    let synth = try segkit(["data", "synth", "--kind", "video", "--out", data.path, "--train", "1", "--val", "1",
                            "--frames", "3", "--image-size", "32x48", "--objects", "2"])
    XCTAssertEqual(synth.status, 0, synth.error)
    let run = root.appendingPathComponent("parent")
    let result = try segkit(["vos", "train", "--set", "dataset=davis2017", "--set", "dataset_dir=\(data.path)",
                             "--set", "model=osvos_resnet18", "--set", "train_crop_size=[32, 48]", "--set", "train_batch_size=2",
                             "--set", "training_number_of_steps=2", "--set", "workers=0", "--run", run.path, "--plain"])
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(result.output.contains("foreground IoU"), result.output)
    let manifest = try RunLayout.existing(run).manifest()
    XCTAssertEqual(manifest.task, .foreground)
    XCTAssertEqual(manifest.model, "osvos_resnet18")
    let log = try String(contentsOf: run.appendingPathComponent("train.log"), encoding: .utf8)
    XCTAssertTrue(log.contains("side5"), "each side loss is logged: \(log)")
    // The main job's chain, shortened: the run folder is the parent of vos segment, scored by vos eval.
    let results = root.appendingPathComponent("results")
    let segmented = try segkit(["vos", "segment", "--parent", run.path, "--davis", data.path, "--year", "2017", "--out", results.path,
                                "--steps", "2", "--device", "cpu", "--plain"])
    XCTAssertEqual(segmented.status, 0, segmented.error)
    let scored = try segkit(["vos", "eval", "--results", results.path, "--davis", data.path, "--year", "2017"])
    XCTAssertEqual(scored.status, 0, scored.error)
    XCTAssertTrue(scored.output.contains("J&F: "), scored.output)

    let other = root.appendingPathComponent("other")
    let refused = try segkit(["vos", "train", "--set", "task=semantic", "--set", "dataset_dir=\(data.path)", "--run", other.path])
    XCTAssertNotEqual(refused.status, 0)
    XCTAssertTrue(refused.error.contains("segkit vos train trains task foreground"), refused.error)
    XCTAssertFalse(FileManager.default.fileExists(atPath: other.path))
  }

  /// MaskRNN's offline training through `segkit vos train` (task foreground with a
  /// `maskrnn_*` model): both streams start from an OSVOS parent, the split's flows are
  /// cached beside the dataset, the loss has its parts (fused, each stream, sides, box),
  /// validation reports the foreground IoU.
  func testVOSTrainTrainsMaskRNN() throws {
    let data = root.appendingPathComponent("davis")
    let synth = try segkit(["data", "synth", "--kind", "video", "--out", data.path, "--train", "1", "--val", "1",
                            "--frames", "3", "--image-size", "48x64", "--objects", "2"])
    XCTAssertEqual(synth.status, 0, synth.error)
    // A second synth would replace the dataset's split lists: refused unless --force.
    let lists = data.appendingPathComponent("ImageSets/2017/val.txt")
    let listed = try Data(contentsOf: lists)
    let again = try segkit(["data", "synth", "--kind", "video", "--out", data.path, "--val", "3"])
    XCTAssertNotEqual(again.status, 0)
    XCTAssertTrue(again.error.contains("already holds files") && again.error.contains("--force"), again.error)
    XCTAssertEqual(try Data(contentsOf: lists), listed)
    Torch.manualSeed(3)
    let parent = root.appendingPathComponent("osvos.safetensors")
    try StateDict(try ModelZoo.make("osvos_resnet18", classes: 1).stateDict()).save(to: parent)
    let run = root.appendingPathComponent("maskrnn")
    let result = try segkit(["vos", "train", "--set", "dataset=davis2017", "--set", "dataset_dir=\(data.path)",
                             "--set", "model=maskrnn_resnet18", "--set", "initial_checkpoint=\(parent.path)",
                             "--set", "train_crop_size=[48, 64]", "--set", "train_batch_size=2", "--set", "training_number_of_steps=2",
                             "--set", "log_interval=1", "--set", "workers=0", "--run", run.path, "--plain"])
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(result.output.contains("foreground IoU"), result.output)
    let log = try String(contentsOf: run.appendingPathComponent("train.log"), encoding: .utf8)
    for part in ["fused", "appearance", "flow", "appearance_sides", "flow_sides", "box"] {
      XCTAssertTrue(log.contains(part), "\(part) in \(log)")
    }
    XCTAssertEqual(try RunLayout.existing(run).manifest().model, "maskrnn_resnet18")
    XCTAssertTrue(FileManager.default.fileExists(atPath: data.appendingPathComponent("FlowCache/settings.json").path))

    let refused = try segkit(["train", "--set", "task=semantic", "--set", "model=maskrnn_resnet18", "--set", "dataset_dir=\(data.path)",
                              "--run", root.appendingPathComponent("no").path])
    XCTAssertNotEqual(refused.status, 0)
    XCTAssertTrue(refused.error.contains("'task' must be foreground for maskrnn_resnet18"), refused.error)

    // Its settings: a learned fusion and a wider proposal travel in the weights to vos segment;
    // another flow preset meets the cache made with the first and is refused; bounds are checked.
    let common = ["vos", "train", "--set", "dataset=davis2017", "--set", "dataset_dir=\(data.path)", "--set", "model=maskrnn_resnet18",
                  "--set", "train_crop_size=[48, 64]", "--set", "train_batch_size=2", "--set", "training_number_of_steps=1",
                  "--set", "workers=0", "--set", "val_split=", "--plain"]
    let learned = root.appendingPathComponent("learned")
    let second = try segkit(common + ["--set", "fusion=learned", "--set", "proposal_enlargement=2", "--run", learned.path])
    XCTAssertEqual(second.status, 0, second.error)
    let weights = try StateDict.load(contentsOf: learned.appendingPathComponent("model.safetensors"))
    XCTAssertNotNil(weights["fusion.weight"])
    XCTAssertEqual(try weights["localiser.proposal_enlargement"]?.item(), 2)
    let segmented = try segkit(["vos", "segment", "--parent", learned.path, "--davis", data.path, "--year", "2017",
                                "--out", root.appendingPathComponent("results").path, "--device", "cpu", "--plain"])
    XCTAssertEqual(segmented.status, 0, segmented.error)
    // The ablation: four rows, each part's results scored; an OSVOS parent is refused.
    let ablationFolder = root.appendingPathComponent("ablation")
    let ablation = try segkit(["vos", "ablation", "--parent", learned.path, "--davis", data.path, "--year", "2017",
                               "--out", ablationFolder.path, "--device", "cpu"])
    XCTAssertEqual(ablation.status, 0, ablation.error)
    let table = try String(contentsOf: ablationFolder.appendingPathComponent("ablation.csv"), encoding: .utf8)
    let rows = table.split(separator: "\n").map { $0.split(separator: ",").map(String.init) }
    XCTAssertEqual(rows.map { $0.first ?? "" }, ["Part", "appearance stream", "flow stream", "both streams", "both + localisation"], table)
    for row in rows.dropFirst() {
      XCTAssertEqual(row.count, 4, table)
      XCTAssertTrue(row.dropFirst().allSatisfy { Double($0).map { (0...1).contains($0) } ?? false }, table)
    }
    // The flow diagnostic: printed, and in flow-warp.csv and ablation.json.
    XCTAssertTrue(ablation.output.contains("previous annotated mask against the current one: J "), ablation.output)
    let warpTable = try String(contentsOf: ablationFolder.appendingPathComponent("flow-warp.csv"), encoding: .utf8)
    XCTAssertEqual(warpTable.split(separator: "\n").map { $0.split(separator: ",").first ?? "" },
                   ["Previous annotated mask", "warped by the flow", "unwarped"], warpTable)
    let report = try JSONSerialization.jsonObject(with: Data(contentsOf: ablationFolder.appendingPathComponent("ablation.json"))) as? [String: Any]
    XCTAssertEqual((report?["parts"] as? [Any])?.count, 4)
    XCTAssertNotNil((report?["flow_warp"] as? [String: Any])?["unwarped_j"])
    for part in ["appearance", "flow", "streams", "full"] {
      let results = try FileManager.default.contentsOfDirectory(atPath: ablationFolder.appendingPathComponent(part).path)
      XCTAssertEqual(results.count, 1, "\(part): one folder per validation sequence")
    }
    // With the generator's exact flows: the same table, and the warp carries the masks.
    let exactFolder = root.appendingPathComponent("ablation-exact")
    let exact = try segkit(["vos", "ablation", "--parent", learned.path, "--davis", data.path, "--year", "2017",
                            "--out", exactFolder.path, "--device", "cpu", "--flow", "exact"])
    XCTAssertEqual(exact.status, 0, exact.error)
    let exactReport = try JSONSerialization.jsonObject(with: Data(contentsOf: exactFolder.appendingPathComponent("ablation.json"))) as? [String: Any]
    let exactWarp = try XCTUnwrap(exactReport?["flow_warp"] as? [String: Double])
    XCTAssertGreaterThan(try XCTUnwrap(exactWarp["warped_j"]), try XCTUnwrap(exactWarp["unwarped_j"]), "\(exactWarp)")
    let osvosParent = try segkit(["vos", "ablation", "--parent", parent.path, "--model", "osvos_resnet18", "--davis", data.path,
                                  "--year", "2017", "--out", root.appendingPathComponent("no-ablation").path])
    XCTAssertNotEqual(osvosParent.status, 0)
    XCTAssertTrue(osvosParent.error.contains("is not a MaskRNN"), osvosParent.error)
    // Trained on the generator's exact flows: no cache is read, and the run's own flows are the exact ones.
    let exactRun = root.appendingPathComponent("exact-run")
    let onExact = try segkit(common + ["--set", "flow_method=exact", "--run", exactRun.path])
    XCTAssertEqual(onExact.status, 0, onExact.error)
    XCTAssertEqual(try RunLayout.existing(exactRun).manifest().inference?.flowMethod, "exact")
    let exactTrained = root.appendingPathComponent("ablation-exact-trained")
    let readsExact = try segkit(["vos", "ablation", "--parent", exactRun.path, "--davis", data.path, "--year", "2017",
                                 "--out", exactTrained.path, "--device", "cpu"])
    XCTAssertEqual(readsExact.status, 0, readsExact.error)
    XCTAssertEqual(try Data(contentsOf: exactTrained.appendingPathComponent("flow-warp.csv")),
                   try Data(contentsOf: exactFolder.appendingPathComponent("flow-warp.csv")), "--flow trained of an exact-flow run reads the exact flows")
    let noFlows = root.appendingPathComponent("davis-without-flow")
    try FileManager.default.copyItem(at: data, to: noFlows)
    try FileManager.default.removeItem(at: Synthetic.flowFolders(of: noFlows).forward)
    let missing = try segkit(common.map { $0 == "dataset_dir=\(data.path)" ? "dataset_dir=\(noFlows.path)" : $0 }
                               + ["--set", "flow_method=exact", "--run", root.appendingPathComponent("no-exact").path])
    XCTAssertNotEqual(missing.status, 0)
    XCTAssertTrue(missing.error.contains("Flow/480p") && missing.error.contains("is missing"), missing.error)
    let otherPreset = try segkit(common + ["--set", "flow_preset=ultrafast", "--run", root.appendingPathComponent("ultrafast").path])
    XCTAssertNotEqual(otherPreset.status, 0)
    XCTAssertTrue(otherPreset.error.contains("made with dis (preset medium)"), otherPreset.error)
    let bounds = try segkit(common + ["--set", "proposal_enlargement=9", "--set", "perturbation_drop=2", "--run", root.appendingPathComponent("b").path])
    XCTAssertNotEqual(bounds.status, 0)
    XCTAssertTrue(bounds.error.contains("'proposal_enlargement' must be in [1, 4]") && bounds.error.contains("'perturbation_drop'"), bounds.error)
  }
}
