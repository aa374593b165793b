import Foundation

extension TrainingConfig {
  // MARK: Validation

  /// Checks ranges and consistency; every problem is listed in one error.
  public func validate() throws {
    var problems: [String] = []
    func require(_ condition: Bool, _ key: String, _ rule: String, _ value: String) {
      if !condition { problems.append("'\(key)' \(rule), got \(value)") }
    }
    require(!dataset.isEmpty, "dataset", "must name a dataset", "nothing")
    require(!trainSplit.isEmpty, "train_split", "must name a split", "nothing")
    if let numClasses { require(numClasses >= 1, "num_classes", "must be at least 1", "\(numClasses)") }
    if let numClasses, (0..<numClasses).contains(ignoreLabel) {
      problems.append("'ignore_label' \(ignoreLabel) is one of the \(numClasses) classes; void needs a value outside [0, \(numClasses))")
    }
    require(ignoreLabel >= 0, "ignore_label", "must be non-negative", "\(ignoreLabel)")
    if !ModelZoo.names.contains(model) {
      let close = ModelZoo.closeMatches(to: model, limit: 3)
      let hint = close.isEmpty ? "" : " (did you mean \(close.map { "'\($0)'" }.joined(separator: ", "))?)"
      problems.append("'model' names no known model: '\(model)'\(hint); `segkit models` lists them")
    }
    if let outputStride { require([8, 16, 32].contains(outputStride), "output_stride", "must be 8, 16 or 32", "\(outputStride)") }
    if let atrousRates {
      require(!atrousRates.isEmpty && atrousRates.allSatisfy { $0 >= 1 }, "atrous_rates", "must be positive rates", "\(atrousRates)")
    }
    func size(_ value: [Int], _ key: String) {
      require(value.count == 2 && value.allSatisfy { $0 >= 1 }, key, "must be [height, width], both positive", "\(value)")
    }
    size(trainCropSize, "train_crop_size")
    if let evalCropSize { size(evalCropSize, "eval_crop_size") }
    require(trainBatchSize >= 1, "train_batch_size", "must be at least 1", "\(trainBatchSize)")
    require(minScaleFactor > 0, "min_scale_factor", "must be positive", "\(minScaleFactor)")
    require(maxScaleFactor >= minScaleFactor, "max_scale_factor", "must be at least min_scale_factor (\(minScaleFactor))", "\(maxScaleFactor)")
    require(scaleFactorStepSize >= 0, "scale_factor_step_size", "must be non-negative", "\(scaleFactorStepSize)")
    require((0...1).contains(flipProbability), "flip_probability", "must be in [0, 1]", "\(flipProbability)")
    require(trainingNumberOfSteps >= 1, "training_number_of_steps", "must be at least 1", "\(trainingNumberOfSteps)")
    if let epochs { require(epochs >= 1, "epochs", "must be at least 1", "\(epochs)") }

    require(baseLearningRate > 0, "base_learning_rate", "must be positive", "\(baseLearningRate)")
    require(learningPower > 0, "learning_power", "must be positive", "\(learningPower)")
    require(endLearningRate >= 0, "end_learning_rate", "must be non-negative", "\(endLearningRate)")
    require(learningRateDecayFactor > 0, "learning_rate_decay_factor", "must be positive", "\(learningRateDecayFactor)")
    require(learningRateDecayStep >= 1, "learning_rate_decay_step", "must be at least 1", "\(learningRateDecayStep)")
    if learningPolicy == .piecewise {
      require(learningRateValues.count == learningRateBoundaries.count + 1, "learning_rate_values",
              "must hold one rate more than learning_rate_boundaries (\(learningRateBoundaries.count))",
              "\(learningRateValues.count) rates")
      require(zip(learningRateBoundaries, learningRateBoundaries.dropFirst()).allSatisfy { $0 < $1 },
              "learning_rate_boundaries", "must increase", "\(learningRateBoundaries)")
      require(learningRateValues.allSatisfy { $0 >= 0 }, "learning_rate_values", "must be non-negative", "\(learningRateValues)")
    }
    require(slowStartStep >= 0, "slow_start_step", "must be non-negative", "\(slowStartStep)")
    require(slowStartLearningRate >= 0, "slow_start_learning_rate", "must be non-negative", "\(slowStartLearningRate)")
    require(warmupSteps >= 0, "warmup_steps", "must be non-negative", "\(warmupSteps)")
    require((0...1).contains(warmupStartFactor), "warmup_start_factor", "must be in [0, 1]", "\(warmupStartFactor)")

    require((0..<1).contains(momentum), "momentum", "must be in [0, 1)", "\(momentum)")
    require(!nesterov || optimizer != .sgd || momentum > 0, "nesterov", "needs a positive momentum", "momentum \(momentum)")
    require(weightDecay >= 0, "weight_decay", "must be non-negative", "\(weightDecay)")
    require((0..<1).contains(adamBeta1), "adam_beta1", "must be in [0, 1)", "\(adamBeta1)")
    require((0..<1).contains(adamBeta2), "adam_beta2", "must be in [0, 1)", "\(adamBeta2)")
    require(adamEpsilon >= 0, "adam_epsilon", "must be non-negative", "\(adamEpsilon)")
    require(gradientAccumulation >= 1, "gradient_accumulation", "must be at least 1", "\(gradientAccumulation)")
    if let gradientClipNorm { require(gradientClipNorm > 0, "gradient_clip_norm", "must be positive", "\(gradientClipNorm)") }
    switch (task, loss) {
    case (.semantic, .balancedBCE):
      problems.append("'loss' balanced_bce needs a one-channel model: set task: foreground")
    case (.foreground, .dice), (.foreground, .lovasz):
      problems.append("'loss' \(loss.rawValue) is a multi-class loss; task foreground takes balanced_bce or cross_entropy")
    default: break
    }
    require(lastLayerGradientMultiplier >= 0, "last_layer_gradient_multiplier", "must be non-negative", "\(lastLayerGradientMultiplier)")

    require(topKPercentPixels > 0 && topKPercentPixels <= 1, "top_k_percent_pixels", "must be in (0, 1]", "\(topKPercentPixels)")
    require(hardExampleMiningStep >= 0, "hard_example_mining_step", "must be non-negative", "\(hardExampleMiningStep)")
    require(auxLossWeight >= 0, "aux_loss_weight", "must be non-negative", "\(auxLossWeight)")
    if let classWeights {
      require(classWeights.allSatisfy { $0 >= 0 }, "class_weights", "must be non-negative", "\(classWeights)")
      if let numClasses {
        require(classWeights.count == numClasses, "class_weights", "must hold one weight per class (\(numClasses))",
                "\(classWeights.count) weights")
      }
    }

    require(evalBatchSize >= 1, "eval_batch_size", "must be at least 1", "\(evalBatchSize)")
    require(!evalScales.isEmpty && evalScales.allSatisfy { $0 > 0 }, "eval_scales", "must be positive scales", "\(evalScales)")

    require(seed >= 0, "seed", "must be non-negative", "\(seed)")
    if device != "auto" {
      do { _ = try Device(parsing: device) } catch { problems.append("'device' \(error)") }
    }
    for (key, value) in [("threads", threads), ("workers", workers), ("val_interval", valInterval),
                         ("val_samples", valSamples), ("keep_checkpoints", keepCheckpoints)] {
      require(value >= 0, key, "must be non-negative", "\(value)")
    }
    require(logInterval >= 1, "log_interval", "must be at least 1", "\(logInterval)")
    require(checkpointInterval >= 1, "checkpoint_interval", "must be at least 1", "\(checkpointInterval)")

    guard problems.isEmpty else {
      throw TrainingError("invalid configuration:\n" + problems.map { "  - \($0)" }.joined(separator: "\n"))
    }
  }
}
