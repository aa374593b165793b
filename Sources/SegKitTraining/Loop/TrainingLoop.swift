import Foundation

/// How a call to `TrainingLoop.train` ended.
public enum TrainingOutcome {
  /// Every step done; the last validation (nil when the task has none).
  case finished(step: Int, validation: ValidationReport?)
  /// Stopped early (interrupt or `stopAfterSteps`), with a checkpoint at `step` when
  /// the loop writes checkpoints.
  case interrupted(step: Int, checkpoint: URL?)
}

/// The loop's own settings: length, cadence, accumulation, clipping, seed.
public struct LoopSettings: Sendable {
  /// Optimizer steps of the whole run.
  public var totalSteps: Int
  /// Batches whose averaged gradients make one optimizer step.
  public var gradientAccumulation = 1
  /// Clip the gradients' global 2-norm to this before each step; nil: no clipping.
  public var gradientClipNorm: Double?
  public var seed: UInt64 = 0
  /// Steps between log lines and TensorBoard scalars.
  public var logInterval = 10
  /// Steps between validations; 0: at the end only.
  public var validationInterval = 0
  /// Steps between checkpoints (when the loop writes them).
  public var checkpointInterval = 1000
  /// Recorded in checkpoints, so that resuming with other settings can be noticed.
  public var fingerprint = ""

  public init(totalSteps: Int) { self.totalSteps = totalSteps }
}

/// Trains any `TrainingTask`. Written once for every task: steps, gradient
/// accumulation, clipping, the learning-rate schedule, seeding, checkpoints,
/// exact resume, interruption and the cadence of logs and validation.
///
/// A run resumes exactly: the learning rate is a function of the step, the
/// optimizer state and the loader position are checkpointed, augmentation is a
/// function of (seed, epoch, sample), and torch's random generator (dropout) is
/// reseeded from (seed, step) before every forward pass. So an interrupted and
/// resumed run ends with the weights of an uninterrupted one.
public final class TrainingLoop {
  public let task: any TrainingTask
  public let optimizer: Optimizer
  public let schedule: LearningRateSchedule
  public let settings: LoopSettings
  public var sinks: [any TrainingSink]
  /// Where checkpoints go; nil writes none.
  public let checkpoints: CheckpointStore?
  /// Where the final weights go; nil writes none.
  public let finalWeights: URL?
  /// Optimizer steps taken so far.
  public private(set) var step = 0
  /// The loader position of the next batch.
  public private(set) var position = LoaderPosition.start
  /// The best headline metric seen by validation so far.
  public private(set) var best: Double?
  /// How a user continues this run, for error messages ("segkit train --resume RUN").
  public var resumeHint: String?
  /// The process group of a data-parallel run; nil for one process.
  public let dataParallel: DataParallel?
  private var lastCheckpointStep = 0
  private var resumed = false

  public init(
    task: any TrainingTask, optimizer: Optimizer, schedule: LearningRateSchedule, settings: LoopSettings,
    sinks: [any TrainingSink] = [], checkpoints: CheckpointStore? = nil, finalWeights: URL? = nil,
    dataParallel: DataParallel? = nil
  ) throws {
    guard settings.totalSteps >= 1, settings.gradientAccumulation >= 1, settings.logInterval >= 1,
          settings.checkpointInterval >= 1, settings.validationInterval >= 0
    else { throw TrainingError("loop settings out of range: \(settings)") }
    guard task.trainLoader.stepsPerEpoch > 0 else {
      throw TrainingError("the training data has \(task.trainLoader.source.count) samples, fewer than one batch of \(task.trainLoader.options.batchSize)")
    }
    self.task = task
    self.optimizer = optimizer
    self.schedule = schedule
    self.settings = settings
    self.sinks = sinks
    self.checkpoints = checkpoints
    self.finalWeights = finalWeights
    self.dataParallel = dataParallel
  }

  /// Processes training together (1 without a process group).
  public var worldSize: Int { dataParallel?.group.worldSize ?? 1 }
  /// Rank 0 validates; the others train on.
  private var validates: Bool { (dataParallel?.group.rank ?? 0) == 0 }

  /// Continues from `checkpoint`: weights, optimizer state, step, data position, best metric.
  public func restore(_ checkpoint: Checkpoint) throws {
    let meta = checkpoint.metadata
    // Each rank's shard of the data depends on the world size: another would not resume exactly.
    let savedWorld = meta.extra[Self.worldSizeKey].flatMap(Int.init) ?? 1
    guard savedWorld == worldSize else {
      throw TrainingError("the checkpoint at step \(meta.step) was written by \(savedWorld) process(es), this run has \(worldSize); "
                            + "resume with the same number of processes (or start a new run from its weights with initial_checkpoint)")
    }
    try checkpoint.restore(model: task.model, optimizer: optimizer)
    step = meta.step
    lastCheckpointStep = step
    position = LoaderPosition(epoch: meta.epoch, step: meta.dataPosition / task.trainLoader.options.batchSize)
    best = meta.extra[Self.bestKey].flatMap(Double.init)
    resumed = true
  }

  static let bestKey = "best_metric"
  static let worldSizeKey = "world_size"

  // MARK: Training

  /// Trains to the last step, or until `shouldStop` returns true (checked between steps)
  /// or `stopAfterSteps` steps of this call are done; either way a checkpoint of the
  /// current step is written (when the loop writes checkpoints). An error after some
  /// steps also writes one (of the last completed step) before it is rethrown.
  public func train(stopAfterSteps: Int? = nil, shouldStop: () -> Bool = { false }) throws -> TrainingOutcome {
    defer { for sink in sinks { try? sink.close() } }
    log(resumed
      ? "resuming at step \(step) of \(settings.totalSteps) (\(position))"
      : "training \(task.summary) for \(settings.totalSteps) steps")
    do {
      try dataParallel?.synchronize(task.model)
      return try trainSteps(stopAfterSteps: stopAfterSteps, shouldStop: shouldStop)
    } catch {
      if checkpoints != nil, step > lastCheckpointStep, let url = try? saveCheckpoint() {
        log("error at step \(step + 1): \(error)")
        throw TrainingError("\(error)\n(the run is saved at step \(step) in \(url.path)" + (resumeHint.map { "; resume with \($0)" } ?? "") + ")")
      }
      log("error at step \(step + 1): \(error)")
      throw error
    }
  }

  private func trainSteps(stopAfterSteps: Int?, shouldStop: () -> Bool) throws -> TrainingOutcome {
    let total = settings.totalSteps, accumulation = settings.gradientAccumulation
    let batches = task.trainLoader.batches(from: position, count: max(0, total - step) * accumulation)
    var accumulator = try GradientAccumulator(iterations: accumulation)
    let sessionStart = Date(), sessionFirstStep = step
    var window = Window()
    while step < total {
      var stopping = shouldStop() || stopAfterSteps.map({ step - sessionFirstStep >= $0 }) == true
      if let dataParallel { stopping = try dataParallel.anyRank(stopping) }
      if stopping {
        let url = checkpoints == nil ? nil : step > lastCheckpointStep ? try saveCheckpoint() : checkpoints?.url(forStep: step)
        log("stopped at step \(step) of \(total)" + (url.map { "; checkpoint \($0.lastPathComponent)" } ?? ""))
        return .interrupted(step: step, checkpoint: url)
      }
      var losses = StepLosses()
      for micro in 0..<accumulation {
        guard let batch = try batches.next() else {
          throw TrainingError("the training data ended before step \(step + 1)")
        }
        // Dropout draws from torch's generator: a function of (seed, step) resumes exactly.
        Torch.manualSeed(settings.seed &* 1_000_003 &+ UInt64(step * accumulation + micro))
        let terms = try task.loss(batch, step: step)
        var values = [try terms.total.item()] + (try terms.parts.map { try $0.value.item() })
        var objective = terms.total
        if let dataParallel {
          // This rank's part of the global batch's loss: the ranks' gradients then add up.
          let (share, global) = try dataParallel.share(normalizer: terms.normalizer ?? 1, losses: values)
          (objective, values) = (try terms.total * share, global)
        }
        guard values[0].isFinite else {
          throw TrainingError("the loss is \(values[0]) at step \(step + 1) (samples \(batch.names.joined(separator: ", "))); lower base_learning_rate?")
        }
        // The step's last backward pass also averages the gradients over the
        // accumulated batches and, data parallel, sums them over the ranks as it goes.
        let lastBatch = micro == accumulation - 1
        if lastBatch { try dataParallel?.sumGradientsDuringBackward(of: optimizer.parameters, dividingBy: accumulation) }
        try objective.backward()
        if dataParallel == nil { _ = try accumulator.accumulate(optimizer.parameters) }
        losses.add(total: values[0], parts: zip(terms.parts, values.dropFirst()).map { ($0.0.name, $0.1) }, weight: 1 / Double(accumulation))
        window.images += batch.names.count * worldSize
      }
      try dataParallel?.finishGradientSum()
      if let maxNorm = settings.gradientClipNorm {
        _ = try clipGradNorm(optimizer.parameters.filter { $0.grad != nil }, maxNorm: maxNorm)
      }
      let learningRate = schedule(step)
      try optimizer.step(learningRate: learningRate)
      try optimizer.zeroGrad()
      step += 1
      position = batches.position
      window.add(losses)

      let elapsed = Date().timeIntervalSince(sessionStart)
      let eta = elapsed / Double(step - sessionFirstStep) * Double(total - step)
      let speed = Double(window.images) / max(Date().timeIntervalSince(window.start), 1e-9)
      report(.progress(progressText(loss: losses.total, speed: speed, eta: eta)))
      if step % settings.logInterval == 0 || step == total {
        logWindow(window, learningRate: learningRate, speed: speed, eta: eta)
        window = Window()
      }
      // Throughput counts training only.
      let pause = Date()
      if settings.validationInterval > 0 && step % settings.validationInterval == 0 && step < total {
        _ = try validate()
      }
      if checkpoints != nil && step % settings.checkpointInterval == 0 && step < total {
        try saveCheckpoint()
      }
      window.start += Date().timeIntervalSince(pause)
    }
    let validation = try validate()
    if checkpoints != nil && step > lastCheckpointStep { try saveCheckpoint() }
    var ending = "finished \(total) steps"
    if let finalWeights {
      try StateDict(try task.model.stateDict()).save(to: finalWeights)
      ending += "; weights \(finalWeights.path)"
    }
    if let headline = validation?.headline { ending += "; \(headline.name) " + String(format: "%.4f", headline.value) }
    log(ending)
    if let dataParallel, step > sessionFirstStep {
      log(String(format: "data parallel: gradient exchange %.1f ms per step after backward", dataParallel.gradientSeconds / Double(step - sessionFirstStep) * 1000))
    }
    return .finished(step: step, validation: validation)
  }

  /// Loss values of one optimizer step (averaged over its accumulated batches).
  private struct StepLosses {
    var total = 0.0
    var parts: [(name: String, value: Double)] = []

    mutating func add(total: Double, parts terms: [(name: String, value: Double)], weight: Double) {
      self.total += total * weight
      for (index, term) in terms.enumerated() {
        let value = term.value * weight
        if index < parts.count { parts[index].value += value } else { parts.append((term.name, value)) }
      }
    }
  }

  /// Steps since the last log line.
  private struct Window {
    var start = Date()
    var images = 0
    var steps = 0
    var losses = StepLosses()

    mutating func add(_ step: StepLosses) {
      steps += 1
      losses.total += step.total
      for (index, part) in step.parts.enumerated() {
        if index < losses.parts.count { losses.parts[index].value += part.value } else { losses.parts.append(part) }
      }
    }
  }

  private func logWindow(_ window: Window, learningRate: Double, speed: Double, eta: Double) {
    let n = Double(max(1, window.steps))
    let parts = window.losses.parts.map { ($0.name, $0.value / n) }
    report(.scalars([("loss/total", window.losses.total / n)] + parts.map { ("loss/\($0.0)", $0.1) }
      + [("learning_rate", learningRate), ("throughput/images_per_second", speed)], step: step))
    let partsText = parts.count > 1
      ? " (" + parts.map { "\($0.0) " + String(format: "%.4f", $0.1) }.joined(separator: " ") + ")" : ""
    log(String(format: "step %d/%d loss %.4f", step, settings.totalSteps, window.losses.total / n) + partsText
          + String(format: " lr %.3g %.1f img/s eta ", learningRate, speed) + durationText(eta))
  }

  private func progressText(loss: Double, speed: Double, eta: Double) -> String {
    let width = 24, done = Int(Double(width) * Double(step) / Double(settings.totalSteps))
    let bar = String(repeating: "=", count: done) + String(repeating: " ", count: width - done)
    return "step \(step)/\(settings.totalSteps) [\(bar)]" + String(format: " loss %.4f %.1f img/s ETA ", loss, speed)
      + durationText(eta)
  }

  // MARK: Validation, checkpoints, reports

  /// Validates the model as it is now, reporting to the sinks; nil when the task has no validation.
  @discardableResult
  public func validate() throws -> ValidationReport? {
    guard validates, let report = try task.validate(step: step) else { return nil }
    if let headline = report.headline, !headline.value.isNaN {
      best = report.lowerIsBetter ? min(best ?? .infinity, headline.value) : max(best ?? -.infinity, headline.value)
    }
    if !report.scalars.isEmpty { self.report(.scalars(report.scalars, step: step)) }
    if !report.images.isEmpty { self.report(.images(report.images, step: step)) }
    log("validation at step \(step): \(report.summary)")
    return report
  }

  @discardableResult
  private func saveCheckpoint() throws -> URL {
    guard let checkpoints else { throw TrainingError("this loop writes no checkpoints") }
    var extra: [String: String] = [Self.worldSizeKey: String(worldSize)]
    if let best { extra[Self.bestKey] = String(best) }
    let metadata = CheckpointMetadata(
      step: step, epoch: position.epoch, dataPosition: position.step * task.trainLoader.options.batchSize,
      seed: settings.seed, configHash: settings.fingerprint, schedule: schedule, extra: extra)
    let url = try checkpoints.save(try Checkpoint(model: task.model, optimizer: optimizer, metadata: metadata))
    lastCheckpointStep = step
    return url
  }

  /// A log line to every sink; a sink that fails says so on the console rather than
  /// stopping the run.
  public func log(_ message: String) { report(.message(message)) }

  private func report(_ event: TrainingEvent) {
    for sink in sinks {
      do { try sink.record(event) } catch { print("warning: \(error)") }
    }
  }
}

/// "1h02m", "3m05s", "42s".
func durationText(_ seconds: Double) -> String {
  guard seconds.isFinite, seconds >= 0 else { return "?" }
  let s = Int(seconds.rounded())
  if s >= 3600 { return String(format: "%dh%02dm", s / 3600, s % 3600 / 60) }
  if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
  return "\(s)s"
}
