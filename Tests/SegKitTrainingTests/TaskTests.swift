import Foundation
import SegKitTestSupport
import SegKitTraining
import XCTest

/// The loop is task-generic: a second task (foreground segmentation with OSVOS's
/// balanced loss) trains through it and resumes exactly; the loop runs without a run
/// folder, and a rank other than 0 writes nothing.
extension TrainerTests {
  func foregroundConfig(dataset: URL) throws -> TrainingConfig {
    var config = try baseConfig(dataset: dataset)
    config.task = .foreground
    config.data.numClasses = nil
    config.model.name = "fcn8s_resnet18"
    try config.apply(yaml: Self.shuffledAugmentedAndValidated)
    try config.apply(yaml: """
      optimizer: adam
      base_learning_rate: 0.001
      balanced_loss_normalization: per_pixel
      gradient_clip_norm: 5
      """)
    try config.validate()
    return config
  }

  func testForegroundTaskResumesExactly() throws {
    let dataset = try writeDataset(train: 6, val: 2)
    let config = try foregroundConfig(dataset: dataset)
    let whole = root.appendingPathComponent("whole"), parts = root.appendingPathComponent("parts")
    let trainer = try Trainer(config: config, runFolder: whole)
    XCTAssertTrue(trainer.task is ForegroundSegmentationTask)
    guard case .finished(4, let validation?) = try trainer.train() else { return XCTFail("not finished") }
    XCTAssertEqual(validation.headline?.name, "foreground IoU")
    XCTAssertTrue((0...1).contains(validation.headline?.value ?? -1), "\(validation.metrics)")

    guard case .interrupted(2, _) = try Trainer(config: config, runFolder: parts).train(stopAfterSteps: 2) else {
      return XCTFail("not interrupted")
    }
    guard case .finished(4, _) = try Trainer(resuming: parts).train() else { return XCTFail("not finished") }
    let a = try weights(whole), b = try weights(parts)
    XCTAssertEqual(a.names, b.names)
    for (name, tensor) in a {
      XCTAssertTrue(try tensor.allClose(b[name]!, rtol: 0, atol: 0), name)
    }
    XCTAssertEqual(a["classifier.score_fr.weight"]?.shape.first, 1, "one output channel: \(a.names.filter { $0.hasPrefix("classifier") })")

    // The manifest says what inference needs; the run evaluates through the same path.
    let manifest = try RunLayout(parts).manifest()
    XCTAssertEqual(manifest.task, .foreground)
    XCTAssertEqual(manifest.classes, 1)
    XCTAssertEqual(manifest.classNames, ["background", "foreground"])
    let log = try String(contentsOf: parts.appendingPathComponent("train.log"), encoding: .utf8)
    XCTAssertTrue(log.contains("validation at step 2: foreground IoU"), log)

    // `segkit eval`'s path on the loaded run gives the trainer's own validation scores.
    let loaded = try ModelLoader.load(run: RunLayout(whole))
    let scores = try Evaluation.run(
      try ImageSegmenter(model: loaded.network, normalization: loaded.manifest.normalization, optimize: false),
      task: loaded.manifest.task, dataset: try config.openDataset(split: "val"), numClasses: loaded.manifest.labelCount)
    XCTAssertEqual(scores.perClassIoU[1], validation.headline?.value)
  }

  /// No run folder: the loop trains and validates and writes no file at all.
  func testLoopWithoutRunFolderWritesNothing() throws {
    let dataset = try writeDataset(train: 4, val: 2)
    var config = try foregroundConfig(dataset: dataset)
    config.schedule.trainingNumberOfSteps = 2
    let before = try listing(root)
    let trainer = try Trainer(config: config)
    XCTAssertNil(trainer.run)
    guard case .finished(2, let validation) = try trainer.train() else { return XCTFail("not finished") }
    XCTAssertNotNil(validation)
    let stopped = try Trainer(config: config).train(stopAfterSteps: 1)
    guard case .interrupted(1, nil) = stopped else { return XCTFail("\(stopped)") }
    XCTAssertEqual(try listing(root), before)
  }

  /// Rank 1 of 2 trains on its half of the data and writes nothing, not even the folder.
  func testNonZeroRankWritesNothing() throws {
    let dataset = try writeDataset(train: 4, val: 0)
    var config = try baseConfig(dataset: dataset)
    config.model.name = "fcn32s_resnet18"
    config.schedule.trainingNumberOfSteps = 2
    config.schedule.epochs = 1
    config.input.trainBatchSize = 1
    let run = root.appendingPathComponent("run")
    let trainer = try Trainer(config: config, runFolder: run, role: try ProcessRole(rank: 1, worldSize: 2))
    XCTAssertNil(trainer.run)
    XCTAssertEqual(trainer.task.trainLoader.stepsPerEpoch, 2, "rank 1 sees 2 of the 4 images")
    guard case .finished(2, nil) = try trainer.train() else { return XCTFail("not finished") }
    XCTAssertFalse(FileManager.default.fileExists(atPath: run.path))
    XCTAssertThrowsError(try ProcessRole(rank: 2, worldSize: 2))
  }

  /// The loss setting reaches the task: Dice trains a semantic model, and gradient
  /// clipping bounds the first SGD step (no momentum yet: the update is lr · g).
  func testLossAndClippingSettingsReachTheLoop() throws {
    let dataset = try writeDataset(train: 2, val: 0)
    var config = try baseConfig(dataset: dataset)
    config.model.name = "fcn32s_resnet18"
    config.loss.kind = .dice
    config.schedule.trainingNumberOfSteps = 1
    config.initialization.lastLayerGradientMultiplier = 1
    config.optimizer.weightDecay = 0
    config.optimizer.gradientClipNorm = 1e-3
    Torch.manualSeed(5)
    let initial = root.appendingPathComponent("init.safetensors")
    try StateDict(try ModelZoo.make("fcn32s_resnet18", classes: Self.classes).stateDict()).save(to: initial)
    config.initialization.initialCheckpoint = initial.path
    func stepSize(_ config: TrainingConfig, _ name: String) throws -> Double {
      let run = root.appendingPathComponent(name)
      guard case .finished = try Trainer(config: config, runFolder: run).train() else { throw XCTSkip("not finished") }
      let before = try StateDict.load(contentsOf: initial), after = try weights(run)
      var squared = 0.0
      for (name, tensor) in after where tensor.dtype == .float32 && !name.contains("running") {
        let delta = try tensor.to(.float64) - before[name]!.to(.float64)
        squared += try (delta * delta).sum().item()
      }
      return squared.squareRoot()
    }
    let clipped = try stepSize(config, "clipped")
    // ‖Δw‖ = lr · ‖g‖ ≤ 0.02 · 1e-3 (the poly schedule's first rate is the base rate),
    // up to float32 rounding of the weights.
    XCTAssertLessThanOrEqual(clipped, 0.02 * 1e-3 * 1.01)
    config.optimizer.gradientClipNorm = nil
    XCTAssertGreaterThan(try stepSize(config, "unclipped"), 10 * clipped)
    let run = root.appendingPathComponent("clipped")
    XCTAssertTrue(try String(contentsOf: run.appendingPathComponent("config.yaml"), encoding: .utf8).contains("loss: dice"))
  }

  func listing(_ url: URL) throws -> [String] {
    guard let enumerator = FileManager.default.enumerator(atPath: url.path) else { return [] }
    return (enumerator.allObjects as? [String] ?? []).sorted()
  }
}

extension TrainerTests {
  /// OSVOS trains as a foreground model: the side outputs are supervised too, the
  /// loader normalises with OSVOS's Caffe BGR input, and the manifest carries it.
  func testOSVOSTrainsThroughTheForegroundTask() throws {
    let dataset = try writeDataset(train: 2, val: 0, size: 48)
    var config = try baseConfig(dataset: dataset)
    config.task = .foreground
    config.data.numClasses = nil
    config.model.name = "osvos_vgg16"
    config.input.trainCropSize = [48, 48]
    config.input.trainBatchSize = 1
    config.schedule.trainingNumberOfSteps = 2
    config.initialization.lastLayerGradientMultiplier = 1
    config.initialization.lastLayersContainLogitsOnly = false
    config.foreground.sideLossWeight = 0.5
    let run = root.appendingPathComponent("osvos")
    let trainer = try Trainer(config: config, runFolder: run)
    XCTAssertEqual(trainer.task.trainLoader.augmentation.normalization, .caffeBGR)
    guard case .finished(2, nil) = try trainer.train() else { return XCTFail("not finished") }
    let log = try String(contentsOf: run.appendingPathComponent("train.log"), encoding: .utf8)
    XCTAssertTrue(log.contains("side2") && log.contains("side5"), log)
    let loaded = try ModelLoader.load(run: RunLayout(run))
    XCTAssertEqual(loaded.manifest.normalization, .caffeBGR)
    XCTAssertEqual(loaded.manifest.task, .foreground)
    XCTAssertEqual(loaded.network.outputNames.count, 5)
  }
}
