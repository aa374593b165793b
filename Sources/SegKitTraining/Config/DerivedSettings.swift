import Foundation

// What the settings make: the run's length, schedule, optimizer.kind and run.device.
extension TrainingConfig {
  // MARK: Derived values

  /// Optimizer steps for a training split of `samples` images: `schedule.epochs` full passes when
  /// set (an incomplete last batch is dropped), else `training_number_of_steps`.
  public func totalSteps(trainingSamples samples: Int) -> Int {
    guard let epochs = schedule.epochs else { return schedule.trainingNumberOfSteps }
    return epochs * Swift.max(1, samples / (input.trainBatchSize * optimizer.gradientAccumulation))
  }

  /// The learning-rate schedule over `totalSteps` optimizer.kind steps.
  public func learningRateSchedule(totalSteps: Int) throws -> LearningRateSchedule {
    let decay: LearningRateSchedule.Decay
    switch schedule.learningPolicy {
    case .poly: decay = .poly(base: schedule.baseLearningRate, maxSteps: totalSteps, power: schedule.learningPower, end: schedule.endLearningRate)
    case .step: decay = .step(base: schedule.baseLearningRate, factor: schedule.learningRateDecayFactor, every: schedule.learningRateDecayStep)
    case .piecewise: decay = .piecewise(boundaries: schedule.learningRateBoundaries, values: schedule.learningRateValues)
    case .cosine: decay = .cosine(base: schedule.baseLearningRate, maxSteps: totalSteps, minimum: schedule.endLearningRate)
    }
    return try LearningRateSchedule(decay, warmupSteps: schedule.warmupSteps, warmupStartFactor: schedule.warmupStartFactor,
                                    slowStartSteps: schedule.slowStartStep, slowStartLearningRate: schedule.slowStartLearningRate)
  }

  /// The configured optimizer.kind over `groups`.
  public func makeOptimizer(_ groups: [ParameterGroup]) throws -> Optimizer {
    switch optimizer.kind {
    case .sgd: return try SGD(groups, momentum: optimizer.momentum, nesterov: optimizer.nesterov, weightDecay: optimizer.weightDecay)
    case .adam: return try Adam(groups, beta1: optimizer.adamBeta1, beta2: optimizer.adamBeta2, eps: optimizer.adamEpsilon, weightDecay: optimizer.weightDecay)
    case .adamw: return try AdamW(groups, beta1: optimizer.adamBeta1, beta2: optimizer.adamBeta2, eps: optimizer.adamEpsilon, weightDecay: optimizer.weightDecay)
    }
  }

  /// The run.device to train on: "auto" picks the first CUDA run.device when there is one, else the CPU.
  public func resolvedDevice() throws -> Device {
    do { return try Device.resolve(run.device) } catch { throw TrainingError("'device': \(error)") }
  }
}

extension TrainingConfig {
  /// What inference follows unless told otherwise, stored in model.json so that eval,
  /// predict, vos and dvs never read this configuration. Older runs without it get the
  /// same values from their config.yaml.
  public var inferenceDefaults: ModelManifest.InferenceDefaults {
    let warpPath = task == .flow && data.dataset == "cityscapes"
    let isMaskRNN = ModelFamily(name: model.name)?.isMaskRNN == true
    return ModelManifest.InferenceDefaults(
      scales: evaluation.evalScales, flip: evaluation.addFlippedImages, crop: evaluation.evalCropSize,
      dataset: data.dataset, datasetDir: data.datasetDir, trainSplit: data.trainSplit, valSplit: data.valSplit,
      ignoreLabel: data.ignoreLabel, warpAt: warpPath ? flow.warpAt : nil, flowInputScale: warpPath ? flow.inputScale : nil,
      flowMethod: isMaskRNN ? maskRNN.flowMethod : nil, flowPreset: isMaskRNN ? maskRNN.flowPreset : nil,
      flowWeights: isMaskRNN ? maskRNN.flowWeights : nil,
      segmentationRun: warpPath ? flow.segmentationRun.map { URL(fileURLWithPath: $0).standardizedFileURL.path } : nil,
      memory: task == .memory ? memory.inference : nil)
  }
}
