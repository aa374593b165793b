import Foundation

extension TrainingConfig {
  // MARK: Validation

  /// Checks ranges and consistency; every problem is listed in one error.
  public func validate() throws {
    var problems: [String] = []
    func require(_ condition: Bool, _ key: String, _ rule: String, _ value: String) {
      if !condition { problems.append("'\(key)' \(rule), got \(value)") }
    }
    require(!data.dataset.isEmpty, "dataset", "must name a dataset", "nothing")
    require(!data.trainSplit.isEmpty, "train_split", "must name a split", "nothing")
    if let numClasses = data.numClasses { require(numClasses >= 1, "num_classes", "must be at least 1", "\(numClasses)") }
    if let numClasses = data.numClasses, (0..<numClasses).contains(data.ignoreLabel) {
      problems.append("'ignore_label' \(data.ignoreLabel) is one of the \(numClasses) classes; void needs a value outside [0, \(numClasses))")
    }
    require(data.ignoreLabel >= 0, "ignore_label", "must be non-negative", "\(data.ignoreLabel)")
    let family = ModelFamily(name: model.name)
    if task == .memory {
      require(model.name == "xmem", "model", "must be xmem for task memory", model.name)
      let m = memory
      require((2...64).contains(m.numFrames), "num_frames", "must be 2 to 64", "\(m.numFrames)")
      require((1...64).contains(m.numRefFrames), "num_ref_frames", "must be 1 to 64", "\(m.numRefFrames)")
      require((1...16).contains(m.maxNumObj), "max_num_obj", "must be 1 to 16", "\(m.maxNumObj)")
      require((0...1).contains(m.deepUpdateProb), "deep_update_prob", "must be in [0, 1]", "\(m.deepUpdateProb)")
      require(m.startWarm >= 0 && m.endWarm > m.startWarm, "end_warm", "must be above start_warm (\(m.startWarm)), both non-negative", "\(m.endWarm)")
      require(!m.maxJumpValues.isEmpty && m.maxJumpValues.allSatisfy { $0 >= 1 }, "max_jump_values", "must be positive jumps", "\(m.maxJumpValues)")
      require(m.maxJumpFractions.count == m.maxJumpValues.count - 1 && m.maxJumpFractions == m.maxJumpFractions.sorted(),
              "max_jump_fractions", "must be one fewer than max_jump_values, ascending", "\(m.maxJumpFractions)")
      do { _ = try m.inference.validated() } catch { problems.append("\(error)") }
    } else if family?.isMaskRNN == true {
      require(task == .foreground, "task", "must be foreground for \(model.name) (MaskRNN segments one object at a time)", task.rawValue)
      let m = maskRNN
      require((1...4).contains(m.proposalEnlargement), "proposal_enlargement", "must be in [1, 4]", "\(m.proposalEnlargement)")
      require((1...4).contains(m.localiserGateEnlargement), "localiser_gate_enlargement", "must be in [1, 4]", "\(m.localiserGateEnlargement)")
      require(m.preset != nil, "flow_preset", "must be ultrafast, fast or medium", m.flowPreset)
      require(["dis", "flownet2s", "flownets_thin", "exact"].contains(m.flowMethod), "flow_method", "must be dis, flownet2s, flownets_thin or exact", m.flowMethod)
      require(["dis", "exact"].contains(m.flowMethod) || m.flowWeights != nil, "flow_weights", "must name the weights of flow_method \(m.flowMethod)", "null")
      require((0...32).contains(m.perturbationRadius), "perturbation_radius", "must be 0 to 32", "\(m.perturbationRadius)")
      require((0...64).contains(m.perturbationShift), "perturbation_shift", "must be 0 to 64", "\(m.perturbationShift)")
      require((0...1).contains(m.perturbationDrop), "perturbation_drop", "must be in [0, 1]", "\(m.perturbationDrop)")
      require(m.boxLossWeight >= 0 && m.boxLossWeight.isFinite, "box_loss_weight", "must be non-negative", "\(m.boxLossWeight)")
    } else if family?.flowWidths != nil || task == .flow {
      require(task == .flow, "task", "must be flow for \(model.name) (a flow network)", task.rawValue)
      require(family?.flowWidths != nil, "model", "must be a flow network for task flow (\(ModelZoo.flowNetworkNames.joined(separator: ", ")))", model.name)
      require((["flying_chairs"] + VideoSnippets.datasetNames).contains(data.dataset), "dataset",
              "must be flying_chairs (pairs with their flow), cityscapes or camvid (video snippets, with segmentation_run) for task flow", data.dataset)
      if VideoSnippets.datasetNames.contains(data.dataset) {
        require(flow.segmentationRun != nil, "segmentation_run", "must name a segmentation run for warp-path training on video snippets", "null")
        require((1...100).contains(flow.maximumKeyDistance), "max_key_distance", "must be 1 to 100", "\(flow.maximumKeyDistance)")
        require(["flow", "output"].contains(flow.warpAt), "warp_at", "must be flow or output", flow.warpAt)
        require(flow.inputScale > 0 && flow.inputScale <= 16, "flow_input_scale", "must be more than 0 and at most 16", "\(flow.inputScale)")
      }
      require(input.trainCropSize.allSatisfy { $0 % FlowNetS.sizeMultiple == 0 }, "train_crop_size",
              "must be multiples of \(FlowNetS.sizeMultiple) for a flow network", "\(input.trainCropSize)")
      require(flow.lossWeights.count == 5 && flow.lossWeights.allSatisfy { $0 >= 0 && $0.isFinite }, "flow_loss_weights",
              "must be five non-negative weights (1/4 to 1/64)", "\(flow.lossWeights)")
    } else if !ModelZoo.names.contains(model.name) {
      let close = ModelZoo.closeMatches(to: model.name, limit: 3)
      let hint = close.isEmpty ? "" : " (did you mean \(close.map { "'\($0)'" }.joined(separator: ", "))?)"
      problems.append("'model' names no known model: '\(model.name)'\(hint); `segkit models` lists them")
    }
    if let outputStride = model.outputStride { require([8, 16, 32].contains(outputStride), "output_stride", "must be 8, 16 or 32", "\(outputStride)") }
    if let atrousRates = model.atrousRates {
      require(!atrousRates.isEmpty && atrousRates.allSatisfy { $0 >= 1 }, "atrous_rates", "must be positive rates", "\(atrousRates)")
    }
    func size(_ value: [Int], _ key: String) {
      require(value.count == 2 && value.allSatisfy { $0 >= 1 }, key, "must be [height, width], both positive", "\(value)")
    }
    size(input.trainCropSize, "train_crop_size")
    if let evalCropSize = evaluation.evalCropSize { size(evalCropSize, "eval_crop_size") }
    require(input.trainBatchSize >= 1, "train_batch_size", "must be at least 1", "\(input.trainBatchSize)")
    require(input.minScaleFactor > 0, "min_scale_factor", "must be positive", "\(input.minScaleFactor)")
    require(input.maxScaleFactor >= input.minScaleFactor, "max_scale_factor", "must be at least min_scale_factor (\(input.minScaleFactor))", "\(input.maxScaleFactor)")
    require(input.scaleFactorStepSize >= 0, "scale_factor_step_size", "must be non-negative", "\(input.scaleFactorStepSize)")
    require((0...1).contains(input.flipProbability), "flip_probability", "must be in [0, 1]", "\(input.flipProbability)")
    require((0...180).contains(input.rotationDegrees), "rotation_degrees", "must be in [0, 180]", "\(input.rotationDegrees)")
    require(schedule.trainingNumberOfSteps >= 1, "training_number_of_steps", "must be at least 1", "\(schedule.trainingNumberOfSteps)")
    if let epochs = schedule.epochs { require(epochs >= 1, "epochs", "must be at least 1", "\(epochs)") }

    require(schedule.baseLearningRate > 0, "base_learning_rate", "must be positive", "\(schedule.baseLearningRate)")
    require(schedule.learningPower > 0, "learning_power", "must be positive", "\(schedule.learningPower)")
    require(schedule.endLearningRate >= 0, "end_learning_rate", "must be non-negative", "\(schedule.endLearningRate)")
    require(schedule.learningRateDecayFactor > 0, "learning_rate_decay_factor", "must be positive", "\(schedule.learningRateDecayFactor)")
    require(schedule.learningRateDecayStep >= 1, "learning_rate_decay_step", "must be at least 1", "\(schedule.learningRateDecayStep)")
    if schedule.learningPolicy == .piecewise {
      require(schedule.learningRateValues.count == schedule.learningRateBoundaries.count + 1, "learning_rate_values",
              "must hold one rate more than learning_rate_boundaries (\(schedule.learningRateBoundaries.count))",
              "\(schedule.learningRateValues.count) rates")
      require(zip(schedule.learningRateBoundaries, schedule.learningRateBoundaries.dropFirst()).allSatisfy { $0 < $1 },
              "learning_rate_boundaries", "must increase", "\(schedule.learningRateBoundaries)")
      require(schedule.learningRateValues.allSatisfy { $0 >= 0 }, "learning_rate_values", "must be non-negative", "\(schedule.learningRateValues)")
    }
    require(schedule.slowStartStep >= 0, "slow_start_step", "must be non-negative", "\(schedule.slowStartStep)")
    require(schedule.slowStartLearningRate >= 0, "slow_start_learning_rate", "must be non-negative", "\(schedule.slowStartLearningRate)")
    require(schedule.warmupSteps >= 0, "warmup_steps", "must be non-negative", "\(schedule.warmupSteps)")
    require((0...1).contains(schedule.warmupStartFactor), "warmup_start_factor", "must be in [0, 1]", "\(schedule.warmupStartFactor)")

    require((0..<1).contains(optimizer.momentum), "momentum", "must be in [0, 1)", "\(optimizer.momentum)")
    require(!optimizer.nesterov || optimizer.kind != .sgd || optimizer.momentum > 0, "nesterov", "needs a positive momentum", "momentum \(optimizer.momentum)")
    require(optimizer.weightDecay >= 0, "weight_decay", "must be non-negative", "\(optimizer.weightDecay)")
    require((0..<1).contains(optimizer.adamBeta1), "adam_beta1", "must be in [0, 1)", "\(optimizer.adamBeta1)")
    require((0..<1).contains(optimizer.adamBeta2), "adam_beta2", "must be in [0, 1)", "\(optimizer.adamBeta2)")
    require(optimizer.adamEpsilon >= 0, "adam_epsilon", "must be non-negative", "\(optimizer.adamEpsilon)")
    require(optimizer.gradientAccumulation >= 1, "gradient_accumulation", "must be at least 1", "\(optimizer.gradientAccumulation)")
    if let gradientClipNorm = optimizer.gradientClipNorm { require(gradientClipNorm > 0, "gradient_clip_norm", "must be positive", "\(gradientClipNorm)") }
    switch (task, loss.kind) {
    case (.semantic, .balancedBCE):
      problems.append("'loss' balanced_bce needs a one-channel model: set task: foreground")
    case (.foreground, .dice), (.foreground, .lovasz):
      problems.append("'loss' \(loss.kind.rawValue) is a multi-class loss.kind; task foreground takes balanced_bce or cross_entropy")
    default: break
    }
    require(initialization.lastLayerGradientMultiplier >= 0, "last_layer_gradient_multiplier", "must be non-negative", "\(initialization.lastLayerGradientMultiplier)")

    require(semantic.topKPercentPixels > 0 && semantic.topKPercentPixels <= 1, "top_k_percent_pixels", "must be in (0, 1]", "\(semantic.topKPercentPixels)")
    require(semantic.hardExampleMiningStep >= 0, "hard_example_mining_step", "must be non-negative", "\(semantic.hardExampleMiningStep)")
    require(loss.auxLossWeight >= 0, "aux_loss_weight", "must be non-negative", "\(loss.auxLossWeight)")
    require(foreground.sideLossWeight >= 0 && foreground.sideLossWeight.isFinite, "side_loss_weight", "must be non-negative",
            "\(foreground.sideLossWeight)")
    if task == .foreground && foreground.sideLossSchedule == .piecewise {
      let (boundaries, values) = (foreground.sideLossBoundaries, foreground.sideLossValues)
      require(values.count == boundaries.count + 1, "side_loss_values",
              "must hold one factor more than side_loss_boundaries (\(boundaries.count))", "\(values.count) factors")
      require(zip(boundaries, boundaries.dropFirst()).allSatisfy { $0 < $1 }, "side_loss_boundaries", "must increase", "\(boundaries)")
      require(values.allSatisfy { $0 >= 0 && $0.isFinite }, "side_loss_values", "must be non-negative", "\(values)")
    }
    if initialization.referenceLearningRates {
      require(family?.isOSVOS == true, "reference_learning_rates",
              "needs a model with a reference recipe (an OSVOS model)",
              model.name)
      require(initialization.lastLayerGradientMultiplier == 1, "last_layer_gradient_multiplier",
              "must be 1 with reference_learning_rates", "\(initialization.lastLayerGradientMultiplier)")
    }
    if let classWeights = semantic.classWeights {
      require(classWeights.allSatisfy { $0 >= 0 }, "class_weights", "must be non-negative", "\(classWeights)")
      if let numClasses = data.numClasses {
        require(classWeights.count == numClasses, "class_weights", "must hold one weight per class (\(numClasses))",
                "\(classWeights.count) weights")
      }
    }

    require(!evaluation.evalScales.isEmpty && evaluation.evalScales.allSatisfy { $0 > 0 }, "eval_scales", "must be positive scales", "\(evaluation.evalScales)")

    require(run.seed >= 0, "seed", "must be non-negative", "\(run.seed)")
    if run.device != "auto" {
      do { _ = try Device(parsing: run.device) } catch { problems.append("'device' \(error)") }
    }
    for (key, value) in [("threads", run.threads), ("workers", run.workers), ("val_interval", run.valInterval),
                         ("val_samples", run.valSamples), ("keep_checkpoints", run.keepCheckpoints)] {
      require(value >= 0, key, "must be non-negative", "\(value)")
    }
    require(run.logInterval >= 1, "log_interval", "must be at least 1", "\(run.logInterval)")
    require(run.checkpointInterval >= 1, "checkpoint_interval", "must be at least 1", "\(run.checkpointInterval)")

    checkLimits(require)

    guard problems.isEmpty else {
      throw TrainingError("invalid configuration:\n" + problems.map { "  - \($0)" }.joined(separator: "\n"))
    }
  }

  // MARK: Limits

  /// Upper bounds, so that no value that passes validation can overflow, hang or ask
  /// for absurd memory later (each message names the key and the limit).
  static let limits = (classes: 256, side: 16_384, batch: 4096, steps: 1_000_000_000, epochs: 1_000_000,
                       accumulation: 4096, scale: 16.0, scaleSteps: 100_000, rate: 4096, threads: 1024, workers: 256)

  private func checkLimits(_ require: (Bool, String, String, String) -> Void) {
    let l = Self.limits
    func atMost(_ value: Int, _ limit: Int, _ key: String) { require(value <= limit, key, "must be at most \(limit)", "\(value)") }
    func finite(_ value: Double, _ key: String) { require(value.isFinite, key, "must be a finite number", "\(value)") }
    if let numClasses = data.numClasses { atMost(numClasses, l.classes, "num_classes") }  // label maps hold 8-bit ids
    atMost(data.ignoreLabel, 255, "ignore_label")
    for side in input.trainCropSize { atMost(side, l.side, "train_crop_size") }
    for side in evaluation.evalCropSize ?? [] { atMost(side, l.side, "eval_crop_size") }
    atMost(input.trainBatchSize, l.batch, "train_batch_size")
    require(input.maxScaleFactor <= l.scale, "max_scale_factor", "must be at most \(l.scale)", "\(input.maxScaleFactor)")
    if input.scaleFactorStepSize > 0 {
      let steps = (input.maxScaleFactor - input.minScaleFactor) / input.scaleFactorStepSize
      require(steps.isFinite && steps <= Double(l.scaleSteps), "scale_factor_step_size",
              "must leave at most \(l.scaleSteps) scales between min and max_scale_factor", "\(input.scaleFactorStepSize)")
    }
    for scale in evaluation.evalScales { require(scale <= l.scale, "eval_scales", "must be at most \(l.scale)", "\(scale)") }
    atMost(schedule.trainingNumberOfSteps, l.steps, "training_number_of_steps")
    if let epochs = schedule.epochs { atMost(epochs, l.epochs, "epochs") }
    for (key, value) in [("learning_rate_decay_step", schedule.learningRateDecayStep), ("slow_start_step", schedule.slowStartStep),
                         ("warmup_steps", schedule.warmupSteps), ("hard_example_mining_step", semantic.hardExampleMiningStep)] {
      atMost(value, l.steps, key)
    }
    atMost(optimizer.gradientAccumulation, l.accumulation, "gradient_accumulation")
    for rate in model.atrousRates ?? [] { atMost(rate, l.rate, "atrous_rates") }
    atMost(run.threads, l.threads, "threads")
    atMost(run.workers, l.workers, "workers")
    for (key, value) in [("base_learning_rate", schedule.baseLearningRate), ("end_learning_rate", schedule.endLearningRate),
                         ("learning_power", schedule.learningPower), ("weight_decay", optimizer.weightDecay),
                         ("min_scale_factor", input.minScaleFactor), ("aux_loss_weight", loss.auxLossWeight),
                         ("last_layer_gradient_multiplier", initialization.lastLayerGradientMultiplier)] {
      finite(value, key)
    }
  }
}
