import Foundation

/// Semantic segmentation: a class per pixel, softmax cross-entropy (or Dice,
/// Lovász, DeepLab's hard-pixel mining) on the main and auxiliary heads, mIoU on
/// the validation split.
public final class SemanticSegmentationTask: TrainingTask {
  public let config: TrainingConfig
  public let network: any SegmentationNetwork
  public let classes: Int
  let parts: SegmentationParts
  private let classWeights: Tensor?

  public var model: Module { network }
  public var trainLoader: DataLoader { parts.trainLoader }
  public var summary: String { parts.summary(config, classes: "\(classes) classes") }

  public init(config: TrainingConfig, device: Device, role: ProcessRole = .single) throws {
    guard config.loss.upsampleLogits else {
      throw TrainingError("'upsample_logits' false is not supported: SegKit models return logits at the input size")
    }
    parts = try SegmentationParts(
      config: config, device: device, role: role, outputChannels: { try config.classCount(of: $0) },
      trainingView: { $0 })
    classes = parts.outputChannels
    if let weights = config.semantic.classWeights, weights.count != classes {
      throw TrainingError("'class_weights' holds \(weights.count) weights but the run has \(classes) classes")
    }
    if (0..<classes).contains(config.data.ignoreLabel) {
      throw TrainingError("'ignore_label' \(config.data.ignoreLabel) is one of the \(classes) classes; void needs a value outside [0, \(classes))")
    }
    let dtype = parts.dtype
    classWeights = try config.semantic.classWeights.map { try Tensor($0.map(Float.init), shape: [$0.count]).to(device).to(dtype) }
    network = parts.network
    self.config = config
  }

  public func parameterGroups() throws -> [ParameterGroup] { try parts.parameterGroups(config) }

  public func loss(_ batch: Batch, step: Int) throws -> LossTerms {
    let (images, labels) = try parts.imagesAndLabels(batch, config)
    try checkLabels(labels, names: batch.names)
    var terms = try parts.headLosses(try network(images), auxWeight: config.loss.auxLossWeight) {
      try loss($0, labels, step: step)
    }
    terms.normalizer = try crossEntropyNormalizer(labels)
    return terms
  }

  /// What PyTorch's mean cross-entropy divides by: the valid pixels, each weighing its
  /// class weight. Nil for the other losses and for hard-pixel mining, whose averages
  /// are not over a batch's valid pixels (data-parallel ranks then weigh the same).
  private func crossEntropyNormalizer(_ labels: Tensor) throws -> Double? {
    guard config.loss.kind == .auto || config.loss.kind == .crossEntropy, config.semantic.topKPercentPixels >= 1 else { return nil }
    let valid = try labels.maskedSelect(labels .!= Double(config.data.ignoreLabel))
    guard let classWeights else { return Double(valid.count) }
    return try classWeights.indexSelect(dim: 0, index: valid.to(.int64)).sum().item()
  }

  private func loss(_ logits: Tensor, _ labels: Tensor, step: Int) throws -> Tensor {
    switch config.loss.kind {
    case .auto, .crossEntropy:
      if config.semantic.topKPercentPixels < 1 {
        return try hardPixelCrossEntropy(
          logits: logits, labels: labels,
          mining: HardPixelMining(topKPercentPixels: config.semantic.topKPercentPixels, miningSteps: config.semantic.hardExampleMiningStep),
          globalStep: step, ignoreIndex: config.data.ignoreLabel, classWeights: classWeights)
      }
      return try softmaxCrossEntropy(logits: logits, labels: labels, ignoreIndex: config.data.ignoreLabel, classWeights: classWeights)
    case .dice: return try softDiceLoss(logits: logits, labels: labels, ignoreIndex: config.data.ignoreLabel)
    case .lovasz: return try lovaszSoftmaxLoss(logits: logits, labels: labels, ignoreIndex: config.data.ignoreLabel)
    case .balancedBCE:
      throw TrainingError("'loss' balanced_bce is for one-channel foreground models (task: foreground)")
    }
  }

  /// Labels must be classes or void: a dataset may allow more values than the run's classes.
  private func checkLabels(_ labels: Tensor, names: [String]) throws {
    let counted = try labels.maskedSelect(labels .!= Double(config.data.ignoreLabel))
    guard counted.count > 0 else { return }
    let highest = Int(try counted.max().item())
    guard highest >= classes else { return }
    var offending: [String] = []
    for (i, name) in names.enumerated() {
      let sample = try labels.select(dim: 0, index: i)
      if try ((sample .>= Double(classes)) .& (sample .!= Double(config.data.ignoreLabel))).any().item() != 0 {
        offending.append(name)
      }
    }
    throw TrainingError(
      "label value \(highest) in \(offending.joined(separator: ", ")) lies outside the \(classes) classes (num_classes) and is not ignore_label \(config.data.ignoreLabel)")
  }

  /// Single-scale mIoU and pixel accuracy on the validation split (its first `val_samples` images).
  public func validate(step: Int) throws -> ValidationReport? {
    guard let result = try parts.validate(config, task: .semantic, labelCount: classes, images: config.run.saveSummariesImages)
    else { return nil }
    let scores = result.scores
    return ValidationReport(
      metrics: [("mIoU", scores.meanIoU), ("pixel accuracy", scores.pixelAccuracy)],
      scalars: [("val/mIoU", scores.meanIoU), ("val/pixel_accuracy", scores.pixelAccuracy)], images: result.images,
      summary: String(format: "mIoU %.4f pixel accuracy %.4f (%d images)", scores.meanIoU, scores.pixelAccuracy, result.count))
  }

  /// The trained model's manifest: classes, their names and colours from the training split.
  public func manifest() -> ModelManifest {
    parts.manifest(config, task: .semantic, classNames: parts.trainSet.classNames, colormap: parts.trainSet.colormap)
  }
}
