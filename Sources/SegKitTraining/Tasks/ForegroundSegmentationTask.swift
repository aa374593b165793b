import Foundation

/// Foreground against background with a one-channel model: every labelled class
/// is foreground. OSVOS's class-balanced sigmoid cross-entropy by default (the
/// rarer class weighs more), on the side outputs too when the model has them
/// (`osvos_vgg16`: side2…side5, weighted by `side_loss_weight`), the IoU of the
/// foreground (DAVIS's J over the split) on validation. The parent-network stage
/// of video object segmentation trains this way.
public final class ForegroundSegmentationTask: TrainingTask {
  public let config: TrainingConfig
  public let network: any SegmentationNetwork
  let parts: SegmentationParts
  /// Optimizer steps of the run, for the linear side-loss schedule.
  let totalSteps: Int

  public var model: Module { network }
  public var trainLoader: DataLoader { parts.trainLoader }
  public var summary: String { parts.summary(config, classes: "foreground") }

  public init(config: TrainingConfig, device: Device, role: ProcessRole = .single) throws {
    if let numClasses = config.data.numClasses, numClasses != 1 {
      throw TrainingError("'num_classes' must be 1 (or null) for task foreground: the model has one output channel, got \(numClasses)")
    }
    parts = try SegmentationParts(
      config: config, device: device, role: role, outputChannels: { _ in 1 }, trainingView: { ForegroundView($0) })
    network = parts.network
    totalSteps = config.totalSteps(trainingSamples: parts.trainLoader.stepsPerEpoch * config.input.trainBatchSize)
    self.config = config
  }

  public func parameterGroups() throws -> [ParameterGroup] { try parts.parameterGroups(config) }

  public func loss(_ batch: Batch, step: Int) throws -> LossTerms {
    let (images, labels) = try parts.imagesAndLabels(batch, config)
    // Void pixels (and padding) count as background: the balanced loss has no ignore mask.
    let foreground = try ((labels .== 1).to(parts.dtype)).unsqueeze(1)
    let output = try network(images)
    var terms = try parts.headLosses(output, auxWeight: config.loss.auxLossWeight) { try loss($0, foreground) }
    // Deep supervision (OSVOS): every side output against the same mask.
    let weight = sideLossWeight(step: step)
    for name in network.outputNames where name.hasPrefix("side") && weight > 0 {
      guard let side = output.extras[name] else { continue }
      let sideLoss = try loss(side, foreground)
      terms.total = try terms.total + sideLoss * weight
      terms.parts.append((name, sideLoss))
    }
    return terms
  }


  /// `side_loss_weight` times the schedule's factor at `step`.
  public func sideLossWeight(step: Int) -> Double { Self.sideLossWeight(config.foreground, step: step, totalSteps: totalSteps) }

  /// `side_loss_weight` times the schedule's factor at `step` of `totalSteps`.
  static func sideLossWeight(_ settings: TrainingConfig.ForegroundSettings, step: Int, totalSteps: Int) -> Double {
    switch settings.sideLossSchedule {
    case .constant: return settings.sideLossWeight
    case .linear: return settings.sideLossWeight * max(0, 1 - Double(step) / Double(max(1, totalSteps)))
    case .piecewise:
      let index = settings.sideLossBoundaries.firstIndex { step < $0 } ?? settings.sideLossBoundaries.count
      return settings.sideLossWeight * (index < settings.sideLossValues.count ? settings.sideLossValues[index] : 0)
    }
  }

  private func loss(_ logits: Tensor, _ foreground: Tensor) throws -> Tensor {
    switch config.loss.kind {
    case .auto, .balancedBCE:
      return try classBalancedSigmoidCrossEntropy(logits: logits, labels: foreground, normalization: config.foreground.balancedLossNormalization.normalization)
    case .crossEntropy:
      return try logits.binaryCrossEntropyWithLogits(target: foreground, reduction: .mean)
    case .dice, .lovasz:
      throw TrainingError("'loss' \(config.loss.kind.rawValue) is for semantic models; task foreground takes balanced_bce or cross_entropy")
    }
  }

  /// The foreground IoU (J over the whole split) and pixel accuracy.
  public func validate(step: Int) throws -> ValidationReport? {
    guard let result = try parts.validate(config, task: .foreground, labelCount: 2, images: config.run.saveSummariesImages)
    else { return nil }
    let scores = result.scores
    let foregroundIoU = scores.perClassIoU.count > 1 ? scores.perClassIoU[1] : .nan
    return ValidationReport(
      metrics: [("foreground IoU", foregroundIoU), ("pixel accuracy", scores.pixelAccuracy)],
      scalars: [("val/foreground_iou", foregroundIoU), ("val/pixel_accuracy", scores.pixelAccuracy)],
      images: result.images,
      summary: String(format: "foreground IoU %.4f pixel accuracy %.4f (%d images)", foregroundIoU, scores.pixelAccuracy, result.count))
  }

  public func manifest() -> ModelManifest {
    parts.manifest(config, task: .foreground, classNames: ["background", "foreground"], colormap: .pascal)
  }
}
