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

extension TrainerTests {
  /// Two parent-training steps of osvos_vgg16 equal the same loop in PyTorch: OSVOS's
  /// per-layer learning rates (biases ×2, side scores ×0.1/×0.2, fuse ×0.01/×0.02,
  /// weight decay on weights only, upsampling frozen), the class-balanced loss summed
  /// on the fuse and the four side outputs, gradients averaged over 2 passes, SGD with
  /// momentum, on Caffe-normalised BGR input. The PyTorch side computes the loss as the
  /// same weighted binary cross-entropy SegKit uses (SegKitNN's LossTests check it against
  /// OSVOS's own formula, values and gradients): with OSVOS's formula instead, this
  /// saturated random network ends 1e-3 apart after two steps, from rounding alone.
  func testOSVOSParentStepsMatchPyTorch() throws {
    try SlowTest.skipInFastTier()
    let dataset = try writeDataset(train: 4, val: 0, size: 48)
    Torch.manualSeed(8)
    let model = try ModelZoo.make("osvos_vgg16", classes: 1)
    try OracleModels.drawOrdinaryWeights(try model.stateDict()) { $0.hasPrefix("upscale") }
    let initial = root.appendingPathComponent("osvos-init.safetensors")
    try StateDict(try model.stateDict()).save(to: initial)
    var config = try baseConfig(dataset: dataset)
    try config.apply(yaml: """
      task: foreground
      num_classes: null
      model: osvos_vgg16
      train_crop_size: [48, 48]
      train_batch_size: 1
      gradient_accumulation: 2
      training_number_of_steps: 2
      learning_policy: piecewise
      learning_rate_values: [1.0e-6]
      weight_decay: 0.0002
      last_layer_gradient_multiplier: 1
      reference_learning_rates: true
      side_loss_weight: 1
      balanced_loss_normalization: sum
      """)
    config.initialization.initialCheckpoint = initial.path
    let run = root.appendingPathComponent("osvos-run")
    guard case .finished(2, _) = try Trainer(config: config, runFolder: run).train() else { return XCTFail("not finished") }

    let oracle = try OracleTensors.run(try OracleModels.osvos() + "\n" + #"""
      from PIL import Image
      inputs = load_inputs()
      root = "\#(dataset.path)"
      net = OracleOSVOS()
      net.load_state_dict({k[len("state/"):]: v for k, v in inputs.items()})
      w0 = {k: v.clone() for k, v in net.state_dict().items()}
      for p in list(net.upscale.parameters()) + list(net.upscale_.parameters()):
          p.requires_grad_(False)
      def group(module, mult):
          named = list(module.named_parameters())
          return [{"params": [p for k, p in named if k.endswith("weight")], "lr": 1e-6 * mult, "weight_decay": 2e-4},
                  {"params": [p for k, p in named if k.endswith("bias")], "lr": 2e-6 * mult, "weight_decay": 0.0}]
      groups = group(net.stages, 1) + group(net.side_prep, 1) + group(net.score_dsn, 0.1) + group(net.fuse, 0.01)
      optimizer = torch.optim.SGD(groups, lr=1e-6, momentum=0.9)
      mean = np.array([104.00699, 116.66877, 122.67892], np.float32)
      names = open(root + "/splits/train.txt").read().split()
      def sample(name):
          rgb = np.asarray(Image.open(f"{root}/images/{name}.png").convert("RGB")).astype(np.float32)
          x = (rgb[:, :, ::-1] - mean).transpose(2, 0, 1)
          y = np.asarray(Image.open(f"{root}/masks/{name}.png")).astype(np.int64)
          return torch.from_numpy(np.ascontiguousarray(x))[None], torch.from_numpy(((y > 0) & (y != 255)).astype(np.float32))[None, None]
      def balanced(o, y):
          total = float(y.numel()); pos = y.sum().item(); neg = total - pos
          w = y * ((neg - pos) / total) + pos / total
          return F.binary_cross_entropy_with_logits(o, y, weight=w, reduction="sum")
      for step in range(2):
          for micro in range(2):
              x, y = sample(names[(2 * step + micro) % len(names)])
              loss = sum(balanced(o, y) for o in net(x)) / 2
              loss.backward()
          optimizer.step()
          optimizer.zero_grad()
      save_state("after", net)
      """#, inputs: try model.stateDict().map { ("state/\($0.0)", $0.1) })
    let mine = try StateDict.load(contentsOf: run.appendingPathComponent("model.safetensors"))
    let start = try StateDict.load(contentsOf: initial)
    func norm(_ t: Tensor) throws -> Double { try (t * t).sum().item().squareRoot() }
    var worstWeight: (value: Double, name: String) = (0, ""), worstDelta: (value: Double, name: String) = (0, "")
    for (name, theirs) in try oracle.entries(under: "after") {
      let ours = try XCTUnwrap(mine[name], name).to(.float64), expected = try theirs.to(.float64)
      let difference = try norm(try ours - expected)
      let relative = difference / max(try norm(expected), 1e-12)
      if relative > worstWeight.value { worstWeight = (relative, name) }
      let moved = try norm(try expected - XCTUnwrap(start[name], name).to(.float64))
      if moved > 0 && difference / moved > worstDelta.value { worstDelta = (difference / moved, name) }
    }
    print("OSVOS parent parity: weights \(worstWeight), updates \(worstDelta)")
    XCTAssertLessThan(worstWeight.value, 1e-4, worstWeight.name)
    XCTAssertLessThan(worstDelta.value, 1e-3, worstDelta.name)
    XCTAssertGreaterThan(try norm(try mine["fuse.weight"]!.to(.float64) - start["fuse.weight"]!.to(.float64)), 0)
  }
}

extension TrainerTests {
  /// The side-loss schedules: constant, linear to 0 at the last step, and OSVOS-TensorFlow's
  /// phases (factor 1 before step 15000, 0.5 before 30000, 0 after; 0-based steps).
  func testSideLossSchedules() throws {
    let dataset = try writeDataset(train: 2, val: 0, size: 32)
    var config = try baseConfig(dataset: dataset)
    try config.apply(yaml: """
      task: foreground
      num_classes: null
      model: fcn32s_resnet18
      train_crop_size: [32, 32]
      training_number_of_steps: 40000
      side_loss_weight: 0.5
      """)
    func weights(_ yaml: String, _ steps: [Int]) throws -> [Double] {
      var settings = config
      try settings.apply(yaml: yaml)
      try settings.validate()
      let task = try ForegroundSegmentationTask(config: settings, device: .cpu)
      return steps.map { task.sideLossWeight(step: $0) }
    }
    XCTAssertEqual(try weights("side_loss_schedule: constant", [0, 39999]), [0.5, 0.5])
    XCTAssertEqual(try weights("side_loss_schedule: linear", [0, 20000, 40000]), [0.5, 0.25, 0])
    XCTAssertEqual(try weights("""
      side_loss_schedule: piecewise
      side_loss_boundaries: [15000, 30000]
      side_loss_values: [1, 0.5, 0]
      """, [0, 14999, 15000, 29999, 30000]), [0.5, 0.5, 0.25, 0.25, 0])

    var bad = config
    try bad.apply(yaml: "side_loss_schedule: piecewise\nside_loss_boundaries: [10, 5]\nside_loss_values: [1]\n")
    var text = "no error"
    do { try bad.validate() } catch { text = "\(error)" }
    XCTAssertTrue(text.contains("'side_loss_values' must hold one factor more") && text.contains("'side_loss_boundaries' must increase"), text)
    var reference = config
    reference.initialization.referenceLearningRates = true
    XCTAssertThrowsError(try reference.validate()) { error in
      XCTAssertTrue("\(error)".contains("'reference_learning_rates' needs a model with a reference recipe"), "\(error)")
    }
  }
}
