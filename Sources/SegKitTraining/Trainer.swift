import Foundation

/// A training run as a `TrainingConfig` describes it: the configured task trained
/// by the one `TrainingLoop`, writing a run folder (config.yaml, model.json,
/// train.log, checkpoints/, TensorBoard events, model.safetensors) on rank 0, or
/// nothing at all without a folder.
///
/// Everything that can be checked before training (settings, datasets, model,
/// initial checkpoint, the checkpoint to resume) is checked before the run folder
/// is touched, so a bad setting leaves nothing behind and never disturbs an
/// existing run.
public final class Trainer {
  public let config: TrainingConfig
  /// The run folder; nil when this trainer writes nothing (no folder, or a rank other than 0).
  public let run: RunLayout?
  public let task: any TrainingTask
  public let loop: TrainingLoop
  public let device: Device
  public let role: ProcessRole
  /// Holds the run folder's lock for as long as this trainer lives.
  private let writer: RunWriter?

  /// Optimizer steps taken so far.
  public var step: Int { loop.step }

  /// A new run in `runFolder` (which must be empty or absent).
  public convenience init(
    config: TrainingConfig, runFolder: URL, console: TrainerConsole = .quiet, role: ProcessRole = .single,
    dataParallel: DataParallel? = nil
  ) throws {
    try self.init(config: config, runFolder: runFolder, resume: false, console: console, role: role, dataParallel: dataParallel)
  }

  /// A run that writes nothing: no folder, no checkpoints, no final weights; log
  /// lines only to the console.
  public convenience init(
    config: TrainingConfig, console: TrainerConsole = .quiet, role: ProcessRole = .single, dataParallel: DataParallel? = nil
  ) throws {
    try self.init(config: config, runFolder: nil, resume: false, console: console, role: role, dataParallel: dataParallel)
  }

  /// Continues the run in `runFolder` from its latest checkpoint, with its config.yaml
  /// and `overrides` (`key=value`); with no checkpoint yet it starts that run over.
  public convenience init(
    resuming runFolder: URL, overrides: [String] = [], console: TrainerConsole = .quiet, role: ProcessRole = .single,
    dataParallel: DataParallel? = nil
  ) throws {
    let layout = RunLayout(runFolder)
    guard FileManager.default.fileExists(atPath: layout.configURL.path) else {
      throw TrainingError("\(runFolder.path) is not a run folder (no config.yaml); nothing to resume")
    }
    var config = TrainingConfig()
    try config.apply(contentsOf: layout.configURL)
    try config.apply(overrides: overrides)
    try config.validate()
    try self.init(config: config, runFolder: runFolder, resume: true, console: console, role: role, dataParallel: dataParallel)
  }

  /// With `dataParallel` this is one rank of a data-parallel run (its role is the
  /// group's); `train_batch_size` is then per process.
  private init(
    config: TrainingConfig, runFolder: URL?, resume: Bool, console: TrainerConsole, role: ProcessRole, dataParallel: DataParallel?
  ) throws {
    let role = dataParallel?.role ?? role
    self.config = config
    self.role = role
    if config.run.threads > 0 { try Torch.setThreads(config.run.threads) }
    device = try config.resolvedDevice()

    var manifest: ModelManifest
    switch config.task {
    case .semantic:
      let semantic = try SemanticSegmentationTask(config: config, device: device, role: role)
      (task, manifest) = (semantic, semantic.manifest())
    case .foreground where ModelFamily(name: config.model.name)?.isMaskRNN == true:
      let propagation = try MaskPropagationTask(config: config, device: device, role: role)
      (task, manifest) = (propagation, propagation.manifest())
    case .foreground:
      let foreground = try ForegroundSegmentationTask(config: config, device: device, role: role)
      (task, manifest) = (foreground, foreground.manifest())
    case .flow:
      let flow = try FlowEstimationTask(config: config, device: device, role: role)
      (task, manifest) = (flow, flow.manifest())
    case .memory:
      let memory = try MemoryTrainingTask(config: config, device: device, role: role)
      (task, manifest) = (memory, memory.manifest())
    }
    manifest.inference = config.inferenceDefaults
    if config.initialization.syncBatchNorm, let group = dataParallel?.group {
      for case let norm as BatchNorm2d in task.model.modules() { norm.synchronization = group }
    }
    let totalSteps = config.totalSteps(trainingSamples: task.trainLoader.stepsPerEpoch * config.input.trainBatchSize)
    var settings = LoopSettings(totalSteps: totalSteps)
    settings.gradientAccumulation = config.optimizer.gradientAccumulation
    settings.gradientClipNorm = config.optimizer.gradientClipNorm
    settings.seed = UInt64(config.run.seed)
    settings.logInterval = config.run.logInterval
    settings.validationInterval = config.run.valInterval
    settings.checkpointInterval = config.run.checkpointInterval
    settings.fingerprint = config.hash
    let writes = role.writes && runFolder != nil
    let layout = runFolder.map(RunLayout.init)
    // Weights the run started from (init_checkpoint) cannot be its final weights: said
    // now, before training, rather than when the final weights are written.
    if writes, let final = layout?.finalWeightsURL { try AtomicFile.checkDestination(final) }
    loop = try TrainingLoop(
      task: task, optimizer: try config.makeOptimizer(task.parameterGroups()),
      schedule: try config.learningRateSchedule(totalSteps: totalSteps), settings: settings,
      checkpoints: writes ? layout?.checkpoints(keep: config.run.keepCheckpoints) : nil,
      finalWeights: writes ? layout?.finalWeightsURL : nil, dataParallel: dataParallel)

    // The checkpoint to continue from, restored before the folder is touched.
    var warnings: [String] = []
    var resumedFrom: Checkpoint?
    if resume, let layout, let latest = layout.latestCheckpoint(warning: { warnings.append($0) }) {
      do {
        try loop.restore(latest.checkpoint)
      } catch {
        throw TrainingError("the latest checkpoint of \(layout.url.path) does not fit these settings: \(error)")
      }
      resumedFrom = latest.checkpoint
    }

    var sinks: [any TrainingSink] = role.writes ? [ConsoleSink(console)] : []
    if writes, let runFolder {
      let writer = try RunWriter(runFolder, resume: resume)
      self.writer = writer
      let storedConfig = try writer.layout.storedConfig()
      try writer.writeConfig(config.yaml() + (role.worldSize > 1 ? "# \(Self.globalBatch(config, role))\n" : ""))
      try writer.writeManifest(manifest)
      sinks += try writer.sinks(resumingAt: resume ? loop.step + 1 : nil)
      run = writer.layout
      loop.sinks = sinks
      loop.resumeHint = "--resume \(runFolder.path)"
      if let meta = resumedFrom?.metadata, meta.configHash != config.hash {
        let changed = storedConfig.map { Self.changedKeys(from: $0, to: config) } ?? []
        loop.log("warning: the settings differ from those of the checkpoint at step \(meta.step)"
                   + (changed.isEmpty ? "" : " (\(changed.joined(separator: ", ")))"))
      }
    } else {
      run = nil
      writer = nil
      loop.sinks = sinks
    }
    warnings.forEach { loop.log("warning: \($0)") }
    if role.worldSize > 1 { loop.log(Self.globalBatch(config, role)) }
  }

  /// "data parallel: 2 processes × train_batch_size 4 = global batch 8".
  private static func globalBatch(_ config: TrainingConfig, _ role: ProcessRole) -> String {
    let batch = config.input.trainBatchSize
    return "data parallel: \(role.worldSize) processes × train_batch_size \(batch) = global batch \(role.worldSize * batch)"
  }

  /// Keys whose values differ between an earlier config.yaml and `config`.
  static func changedKeys(from yaml: String, to config: TrainingConfig) -> [String] {
    var before = TrainingConfig()
    guard (try? before.apply(yaml: yaml)) != nil else { return [] }
    let old = before.yaml().split(separator: "\n"), new = config.yaml().split(separator: "\n")
    guard old.count == new.count else { return [] }
    return zip(old, new).filter { $0 != $1 && !$0.hasPrefix("#") }.compactMap { $0.0.split(separator: ":").first.map(String.init) }
  }

  /// Trains to the last step or until stopped; see `TrainingLoop.train`.
  public func train(stopAfterSteps: Int? = nil, shouldStop: () -> Bool = { false }) throws -> TrainingOutcome {
    try loop.train(stopAfterSteps: stopAfterSteps, shouldStop: shouldStop)
  }

  /// Validates the model as it is now.
  @discardableResult
  public func validate() throws -> ValidationReport? { try loop.validate() }
}
