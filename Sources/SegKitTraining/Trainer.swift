import Foundation

/// How a call to `Trainer.train` ended.
public enum TrainingOutcome {
  /// Every step done; the last validation's scores (nil without a validation split).
  case finished(step: Int, scores: SegmentationScores?)
  /// Stopped early (interrupt or `stopAfterSteps`) with a checkpoint at `step`.
  case interrupted(step: Int, checkpoint: URL)
}

/// Trains a segmentation model as a `TrainingConfig` describes, in a run folder:
/// config.yaml, train.log, checkpoints/ and TensorBoard events.
///
/// A run resumes exactly: the learning rate is a function of the step, the optimizer
/// state and the loader position are checkpointed, augmentation is a function of
/// (seed, epoch, sample), and torch's random generator (dropout) is reseeded from
/// (seed, step) before every forward pass. So an interrupted and resumed run ends with
/// the weights of an uninterrupted one.
///
/// Everything that can be checked before training (settings, datasets, model, initial
/// checkpoint) is checked before the run folder is touched, so a bad setting leaves
/// nothing behind and never disturbs an existing run.
public final class Trainer {
  public let config: TrainingConfig
  public let run: RunFolder
  public let model: any SegmentationNetwork
  public let classes: Int
  public let device: Device
  /// Optimizer steps of the whole run.
  public let totalSteps: Int
  /// Optimizer steps taken so far.
  public private(set) var step: Int

  private let trainLoader: DataLoader
  private let validation: (loader: DataLoader, colormap: Colormap)?
  private let optimizer: Optimizer
  private let schedule: LearningRateSchedule
  private let classWeights: Tensor?
  private let board: TensorBoardWriter
  private let console: ConsoleReporter
  private var position: LoaderPosition
  private var lastCheckpointStep: Int
  private var bestMeanIoU: Double?
  /// The first log line, written when training starts.
  private let opening: String

  /// A new run in `runFolder` (which must be empty or absent).
  public convenience init(config: TrainingConfig, runFolder: URL, console: TrainerConsole = .quiet) throws {
    try self.init(config: config, runFolder: runFolder, resume: false, console: console)
  }

  /// Continues the run in `runFolder` from its latest checkpoint, with its config.yaml
  /// and `overrides` (`key=value`); with no checkpoint yet it starts that run over.
  public convenience init(resuming runFolder: URL, overrides: [String] = [], console: TrainerConsole = .quiet) throws {
    let configURL = runFolder.appendingPathComponent("config.yaml")
    guard FileManager.default.fileExists(atPath: configURL.path) else {
      throw TrainingError("\(runFolder.path) is not a run folder (no config.yaml); nothing to resume")
    }
    var config = TrainingConfig()
    try config.apply(contentsOf: configURL)
    try config.apply(overrides: overrides)
    try config.validate()
    try self.init(config: config, runFolder: runFolder, resume: true, console: console)
  }

  private init(config: TrainingConfig, runFolder: URL, resume: Bool, console mode: TrainerConsole) throws {
    guard config.upsampleLogits else {
      throw TrainingError("'upsample_logits' false is not supported: SegKit models return logits at the input size")
    }
    self.config = config
    let reporter = ConsoleReporter(mode)
    console = reporter
    if config.threads > 0 { try Torch.setThreads(config.threads) }
    let device = try config.resolvedDevice()
    self.device = device

    // Data
    let trainSet = try config.openDataset(split: config.trainSplit)
    classes = try config.classCount(of: trainSet)
    if let weights = config.classWeights, weights.count != classes {
      throw TrainingError("'class_weights' holds \(weights.count) weights but the run has \(classes) classes")
    }
    if (0..<classes).contains(config.ignoreLabel) {
      throw TrainingError("'ignore_label' \(config.ignoreLabel) is one of the \(classes) classes; void needs a value outside [0, \(classes))")
    }
    let seed = UInt64(config.seed)
    trainLoader = try DataLoader(
      source: trainSet, augmentation: config.trainingAugmentation(),
      options: LoaderOptions(batchSize: config.trainBatchSize, shuffle: config.shuffle, seed: seed, dropLast: true,
                             workers: config.workers, prefetch: 2 * max(1, config.workers)))
    guard trainLoader.stepsPerEpoch > 0 else {
      throw TrainingError("the \(config.trainSplit) split has \(trainSet.count) images, fewer than one batch (train_batch_size \(config.trainBatchSize))")
    }
    if config.valSplit.isEmpty {
      validation = nil
    } else {
      let valSet = try config.openDataset(split: config.valSplit)
      let source: any SampleSource = config.valSamples > 0
        ? SampleSubset(base: valSet, count: min(config.valSamples, valSet.count)) : valSet
      let loader = try DataLoader(
        source: source, augmentation: config.validationAugmentation(),
        options: LoaderOptions(batchSize: config.evalBatchSize, shuffle: false, workers: config.workers))
      validation = (loader, valSet.colormap)
    }
    totalSteps = config.totalSteps(trainingSamples: trainSet.count)

    // Model, weights, optimizer
    Torch.manualSeed(seed)
    model = try config.makeModel(classes: classes)
    try config.loadInitialCheckpoint(into: model, classes: classes)
    try model.to(device: device)
    model.train()
    if !config.fineTuneBatchNorm {
      for case let norm as BatchNorm2d in model.modules() { norm.statisticsFrozen = true }
    }
    let lastLayers = config.lastLayerGradientMultiplier == 1
      ? [] : try config.lastLayerNames(of: model, classes: classes)
    optimizer = try config.makeOptimizer(model.parameterGroups(
      lastLayer: { lastLayers.contains($0) }, lastLayerMultiplier: config.lastLayerGradientMultiplier,
      noDecayOnBiasAndNorm: config.noDecayOnBiasAndNorm))
    schedule = try config.learningRateSchedule(totalSteps: totalSteps)
    classWeights = try config.classWeights.map { try Tensor($0.map(Float.init), shape: [$0.count]).to(device) }

    // The run folder, last: a checkpoint that does not fit fails before anything is written.
    let checkpoint: Checkpoint?
    if resume {
      let store = CheckpointStore(directory: runFolder.appendingPathComponent("checkpoints"), keep: config.keepCheckpoints)
      var warnings: [String] = []
      checkpoint = store.latest { warnings.append($0) }?.checkpoint
      warnings.forEach { reporter.line("warning: \($0)") }
      if let checkpoint {
        do {
          try checkpoint.restore(model: model, optimizer: optimizer)
        } catch {
          throw TrainingError("the latest checkpoint of \(runFolder.path) does not fit these settings: \(error)")
        }
      }
    } else {
      checkpoint = nil
    }
    run = try RunFolder(runFolder, resume: resume, keepCheckpoints: config.keepCheckpoints)
    let meta = checkpoint?.metadata
    step = meta?.step ?? 0
    lastCheckpointStep = step
    let start = meta.map { LoaderPosition(epoch: $0.epoch, step: $0.dataPosition / config.trainBatchSize) } ?? .start
    position = start
    bestMeanIoU = meta?.extra["best_miou"].flatMap(Double.init)
    let storedConfig = try run.storedConfig()
    try run.writeConfig(config.yaml())
    board = try TensorBoardWriter(directory: run.tensorBoardDirectory, resumingAt: resume ? step + 1 : nil)
    opening = meta != nil
      ? "resuming at step \(step) of \(totalSteps) (\(start))"
      : "training \(config.model) (\(model.trainableParameterCount) trainable parameters, \(classes) classes) for \(totalSteps) steps on \(device); \(trainSet.count) training images"
    if let meta, meta.configHash != config.hash {
      let changed = storedConfig.map { Self.changedKeys(from: $0, to: config) } ?? []
      log("warning: the settings differ from those of the checkpoint at step \(meta.step)"
            + (changed.isEmpty ? "" : " (\(changed.joined(separator: ", ")))"))
    }
  }

  /// Keys whose values differ between an earlier config.yaml and `config`.
  static func changedKeys(from yaml: String, to config: TrainingConfig) -> [String] {
    var before = TrainingConfig()
    guard (try? before.apply(yaml: yaml)) != nil else { return [] }
    let old = before.yaml().split(separator: "\n"), new = config.yaml().split(separator: "\n")
    guard old.count == new.count else { return [] }
    return zip(old, new).filter { $0 != $1 && !$0.hasPrefix("#") }.compactMap { $0.0.split(separator: ":").first.map(String.init) }
  }

  // MARK: Training

  /// Trains to the last step, or until `shouldStop` returns true (checked between steps)
  /// or `stopAfterSteps` steps of this call are done; either way a checkpoint of the
  /// current step is written. An error after some steps also writes one (of the last
  /// completed step) before it is rethrown.
  public func train(stopAfterSteps: Int? = nil, shouldStop: () -> Bool = { false }) throws -> TrainingOutcome {
    defer { console.finish() }
    log(opening)
    do {
      return try trainSteps(stopAfterSteps: stopAfterSteps, shouldStop: shouldStop)
    } catch {
      if step > lastCheckpointStep, let url = try? saveCheckpoint() {
        log("error at step \(step + 1): \(error)")
        throw TrainingError("\(error)\n(the run is saved at step \(step) in \(url.path); resume with --resume \(run.url.path))")
      }
      try? run.log("error at step \(step + 1): \(error)")
      throw error
    }
  }

  private func trainSteps(stopAfterSteps: Int?, shouldStop: () -> Bool) throws -> TrainingOutcome {
    let accumulation = config.gradientAccumulation
    let batches = trainLoader.batches(from: position, count: max(0, totalSteps - step) * accumulation)
    var accumulator = try GradientAccumulator(iterations: accumulation)
    let sessionStart = Date(), sessionFirstStep = step
    var window = (start: Date(), images: 0, steps: 0, total: 0.0, out: 0.0, aux: 0.0)
    while step < totalSteps {
      if shouldStop() || stopAfterSteps.map({ step - sessionFirstStep >= $0 }) == true {
        let url = step > lastCheckpointStep ? try saveCheckpoint() : run.checkpoints.url(forStep: step)
        log("stopped at step \(step) of \(totalSteps); checkpoint \(url.lastPathComponent)")
        return .interrupted(step: step, checkpoint: url)
      }
      var losses = (total: 0.0, out: 0.0, aux: 0.0)
      for micro in 0..<accumulation {
        guard let batch = try batches.next() else {
          throw TrainingError("the training data ended before step \(step + 1)")
        }
        let images = try batch.images.to(device)
        guard let labels = try batch.labels?.to(device) else {
          throw TrainingError("the \(config.trainSplit) split has no labels (\(batch.names.joined(separator: ", ")))")
        }
        try checkLabels(labels, names: batch.names)
        // Dropout draws from torch's generator: a function of (seed, step) resumes exactly.
        Torch.manualSeed(UInt64(config.seed) &* 1_000_003 &+ UInt64(step * accumulation + micro))
        let output = try model(images)
        let outLoss = try loss(output.out, labels)
        var total = outLoss
        var auxValue = 0.0
        if let aux = output.aux, config.auxLossWeight > 0 {
          let auxLoss = try loss(aux, labels)
          total = try lossWithAuxiliary(main: outLoss, auxiliary: [auxLoss], weight: config.auxLossWeight)
          auxValue = try auxLoss.item()
        }
        let totalValue = try total.item()
        guard totalValue.isFinite else {
          throw TrainingError("the loss is \(totalValue) at step \(step + 1) (images \(batch.names.joined(separator: ", "))); lower base_learning_rate?")
        }
        try total.backward()
        _ = try accumulator.accumulate(optimizer.parameters)
        losses.total += totalValue / Double(accumulation)
        losses.out += try outLoss.item() / Double(accumulation)
        losses.aux += auxValue / Double(accumulation)
        window.images += batch.names.count
      }
      let learningRate = schedule(step)
      try optimizer.step(learningRate: learningRate)
      try optimizer.zeroGrad()
      step += 1
      position = batches.position
      window.steps += 1
      window.total += losses.total
      window.out += losses.out
      window.aux += losses.aux

      let elapsed = Date().timeIntervalSince(sessionStart)
      let eta = elapsed / Double(step - sessionFirstStep) * Double(totalSteps - step)
      let speed = Double(window.images) / max(Date().timeIntervalSince(window.start), 1e-9)
      console.progress(progressText(loss: losses.total, speed: speed, eta: eta))
      if step % config.logInterval == 0 || step == totalSteps {
        let n = Double(window.steps)
        var scalars: [(tag: String, value: Double)] = [
          ("loss/total", window.total / n), ("loss/out", window.out / n), ("learning_rate", learningRate),
          ("throughput/images_per_second", speed),
        ]
        if model.outputNames.contains("aux") && config.auxLossWeight > 0 { scalars.append(("loss/aux", window.aux / n)) }
        try board.addScalars(scalars, step: step)
        let auxText = model.outputNames.contains("aux") && config.auxLossWeight > 0
          ? String(format: " (out %.4f aux %.4f)", window.out / n, window.aux / n) : ""
        log(String(format: "step %d/%d loss %.4f", step, totalSteps, window.total / n) + auxText
              + String(format: " lr %.3g %.1f img/s eta ", learningRate, speed) + durationText(eta))
        window = (Date(), 0, 0, 0, 0, 0)
      }
      // Throughput counts training only.
      let pause = Date()
      if config.valInterval > 0 && step % config.valInterval == 0 && step < totalSteps {
        _ = try validate()
      }
      if step % config.checkpointInterval == 0 && step < totalSteps {
        try saveCheckpoint()
      }
      window.start += Date().timeIntervalSince(pause)
    }
    let scores = try validate()
    if step > lastCheckpointStep { try saveCheckpoint() }
    let weights = run.url.appendingPathComponent("model.safetensors")
    try StateDict(try model.stateDict()).save(to: weights)
    log("finished \(totalSteps) steps; weights \(weights.path)"
          + (scores.map { String(format: "; mIoU %.4f", $0.meanIoU) } ?? ""))
    try board.close()
    return .finished(step: step, scores: scores)
  }

  private func loss(_ logits: Tensor, _ labels: Tensor) throws -> Tensor {
    if config.topKPercentPixels < 1 {
      return try hardPixelCrossEntropy(
        logits: logits, labels: labels,
        mining: HardPixelMining(topKPercentPixels: config.topKPercentPixels, miningSteps: config.hardExampleMiningStep),
        globalStep: step, ignoreIndex: config.ignoreLabel, classWeights: classWeights)
    }
    return try softmaxCrossEntropy(logits: logits, labels: labels, ignoreIndex: config.ignoreLabel, classWeights: classWeights)
  }

  /// Labels must be classes or void: a dataset may allow more values than the run's classes.
  private func checkLabels(_ labels: Tensor, names: [String]) throws {
    let counted = try labels.maskedSelect(labels .!= Double(config.ignoreLabel))
    guard counted.count > 0 else { return }
    let highest = Int(try counted.max().item())
    guard highest >= classes else { return }
    var offending: [String] = []
    for (i, name) in names.enumerated() {
      let sample = try labels.select(dim: 0, index: i)
      if try ((sample .>= Double(classes)) .& (sample .!= Double(config.ignoreLabel))).any().item() != 0 {
        offending.append(name)
      }
    }
    throw TrainingError(
      "label value \(highest) in \(offending.joined(separator: ", ")) lies outside the \(classes) classes (num_classes) and is not ignore_label \(config.ignoreLabel)")
  }

  private func progressText(loss: Double, speed: Double, eta: Double) -> String {
    let width = 24, done = Int(Double(width) * Double(step) / Double(totalSteps))
    let bar = String(repeating: "=", count: done) + String(repeating: " ", count: width - done)
    return "step \(step)/\(totalSteps) [\(bar)]" + String(format: " loss %.4f %.1f img/s ETA ", loss, speed) + durationText(eta)
  }

  // MARK: Validation

  /// Single-scale validation on the validation split (its first `val_samples` images):
  /// mIoU and pixel accuracy to the log and TensorBoard, with the first image, its
  /// prediction and its ground truth when `save_summaries_images`. Nil without a split.
  @discardableResult
  public func validate() throws -> SegmentationScores? {
    guard let (loader, colormap) = validation else { return nil }
    model.eval()
    defer { model.train() }
    var matrix = ConfusionMatrix(numClasses: classes, ignoreIndex: config.ignoreLabel)
    var shown: (image: Tensor, prediction: Tensor, label: Tensor)?
    let batches = loader.batches(epoch: 0)
    while let batch = try batches.next() {
      guard let labels = try batch.labels?.to(device) else {
        throw TrainingError("the \(config.valSplit) split has no labels; set val_split to a labelled split or to \"\"")
      }
      let images = try batch.images.to(device)
      let predictions = try accumulatePredictions(of: model, images: images, labels: labels, into: &matrix)
      if shown == nil && config.saveSummariesImages {
        shown = (try batch.images.select(dim: 0, index: 0), try predictions.select(dim: 0, index: 0).to(.cpu),
                 try labels.select(dim: 0, index: 0).to(.cpu))
      }
    }
    let scores = matrix.scores
    if !scores.meanIoU.isNaN { bestMeanIoU = max(bestMeanIoU ?? 0, scores.meanIoU) }
    try board.addScalars([("val/mIoU", scores.meanIoU), ("val/pixel_accuracy", scores.pixelAccuracy)], step: step)
    if let shown {
      let mean = try Tensor(InputNormalization.imagenet.mean, shape: [3, 1, 1]), std = try Tensor(InputNormalization.imagenet.std, shape: [3, 1, 1])
      try board.addImage("val/image", try Image(tensor: shown.image * std + mean), step: step)
      try board.addImage("val/prediction", try colormap.colorize(try Image(tensor: shown.prediction)), step: step)
      try board.addImage("val/ground_truth", try colormap.colorize(try Image(tensor: shown.label)), step: step)
    }
    log(String(format: "validation at step %d: mIoU %.4f pixel accuracy %.4f (%d images)", step, scores.meanIoU,
               scores.pixelAccuracy, loader.source.count))
    return scores
  }

  // MARK: Checkpoints and logging

  @discardableResult
  private func saveCheckpoint() throws -> URL {
    var extra: [String: String] = [:]
    if let bestMeanIoU { extra["best_miou"] = String(bestMeanIoU) }
    let metadata = CheckpointMetadata(
      step: step, epoch: position.epoch, dataPosition: position.step * config.trainBatchSize,
      seed: UInt64(config.seed), configHash: config.hash, schedule: schedule, extra: extra)
    let url = try run.checkpoints.save(try Checkpoint(model: model, optimizer: optimizer, metadata: metadata))
    lastCheckpointStep = step
    return url
  }

  private func log(_ message: String) {
    console.line(message)
    do { try run.log(message) } catch { console.line("warning: \(error)") }
  }
}
