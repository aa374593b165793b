import Foundation

/// What the image segmentation tasks share, built from the configuration: the
/// model on its device, the training loader and the validation split.
struct SegmentationParts {
  let network: any SegmentationNetwork
  /// The model's output channels.
  let outputChannels: Int
  let device: Device
  /// The arithmetic of the weights and images (`float64` setting).
  let dtype: DType
  let trainSet: SegmentationDataset
  let trainLoader: DataLoader
  /// The validation split (its first `val_samples`), labels as stored; nil without one.
  let validation: (source: any SampleSource, colormap: Colormap)?

  /// - Parameters:
  ///   - outputChannels: the model's output channels for the training split.
  ///   - trainingView: what the loss sees of the training split (its labels mapped).
  init(
    config: TrainingConfig, device: Device, role: ProcessRole, outputChannels: (SegmentationDataset) throws -> Int,
    trainingView: (SegmentationDataset) -> any SampleSource
  ) throws {
    self.device = device
    trainSet = try config.openDataset(split: config.data.trainSplit)
    self.outputChannels = try outputChannels(trainSet)
    Torch.manualSeed(UInt64(config.run.seed))
    network = try config.makeModel(classes: self.outputChannels)
    try config.loadInitialCheckpoint(into: network, classes: self.outputChannels)
    dtype = config.run.float64 ? .float64 : .float32
    try network.to(device: device, dtype: dtype)
    network.train()
    if !config.initialization.fineTuneBatchNorm {
      for case let norm as BatchNorm2d in network.modules() { norm.statisticsFrozen = true }
    }

    trainLoader = try DataLoader(
      source: trainingView(trainSet), augmentation: config.trainingAugmentation(normalization: network.inputNormalization),
      options: LoaderOptions(batchSize: config.input.trainBatchSize, shuffle: config.input.shuffle, seed: UInt64(config.run.seed),
                             dropLast: true, workers: config.run.workers, prefetch: 2 * max(1, config.run.workers),
                             rank: role.rank, worldSize: role.worldSize))
    guard trainLoader.stepsPerEpoch > 0 else {
      throw TrainingError("the \(config.data.trainSplit) split has \(trainSet.count) images, fewer than one batch (train_batch_size \(config.input.trainBatchSize)) per process")
    }
    if config.data.valSplit.isEmpty {
      validation = nil
    } else {
      let valSet = try config.openDataset(split: config.data.valSplit)
      let source: any SampleSource = config.run.valSamples > 0 ? SampleSubset(base: valSet, count: config.run.valSamples) : valSet
      validation = (source, valSet.colormap)
    }
  }

  /// Parameter groups with DeepLab's last-layer multiplier and the no-decay option.
  func parameterGroups(_ config: TrainingConfig) throws -> [ParameterGroup] {
    if config.initialization.referenceLearningRates {
      guard let osvos = network as? OSVOS else {
        throw TrainingError("'reference_learning_rates': \(config.model.name) has no reference per-layer learning rates")
      }
      return osvos.referenceParameterGroups()
    }
    let lastLayers = config.initialization.lastLayerGradientMultiplier == 1
      ? [] : try config.lastLayerNames(of: network, classes: outputChannels)
    return network.parameterGroups(
      lastLayer: { lastLayers.contains($0) }, lastLayerMultiplier: config.initialization.lastLayerGradientMultiplier,
      noDecayOnBiasAndNorm: config.optimizer.noDecayOnBiasAndNorm)
  }

  /// A batch's images and labels on the model's device; a split without labels is an error.
  func imagesAndLabels(_ batch: Batch, _ config: TrainingConfig) throws -> (images: Tensor, labels: Tensor) {
    guard let labels = try batch.labels?.to(device) else {
      throw TrainingError("the \(config.data.trainSplit) split has no labels (\(batch.names.joined(separator: ", ")))")
    }
    return (try batch.images.to(device).to(dtype), labels)
  }

  /// The loss of the main head and, when the model has one and its weight is
  /// positive, of the auxiliary head: out + weight · aux.
  func headLosses(_ output: SegmentationOutput, auxWeight: Double, _ loss: (Tensor) throws -> Tensor) throws -> LossTerms {
    let out = try loss(output.out)
    guard let auxLogits = output.aux, auxWeight > 0 else { return LossTerms(total: out, parts: [("out", out)]) }
    let aux = try loss(auxLogits)
    return LossTerms(total: try lossWithAuxiliary(main: out, auxiliary: [aux], weight: auxWeight), parts: [("out", out), ("aux", aux)])
  }

  /// "NAME (N trainable parameters, C classes) on DEVICE; K training images".
  func summary(_ config: TrainingConfig, classes: String) -> String {
    "\(config.model.name) (\(network.trainableParameterCount) trainable parameters, \(classes)) on \(device); \(trainLoader.source.count) training images"
  }

  /// Scores the model on the validation split through the task's evaluation path
  /// (`Evaluation.run`, as `segkit eval`), single-scale, with the first image, its
  /// prediction and its ground truth for TensorBoard when `images`.
  func validate(
    _ config: TrainingConfig, task: ModelManifest.Task, labelCount: Int, images: Bool
  ) throws -> (scores: SegmentationScores, images: [(tag: String, image: Image)], count: Int)? {
    guard let (source, colormap) = validation else { return nil }
    let segmenter = ImageSegmenter(
      borrowing: network, settings: try config.inferenceSettings(multiScale: false), device: device,
      normalization: network.inputNormalization)
    var shown: [(tag: String, image: Image)] = []
    let scores = try Evaluation.run(
      segmenter, task: task, dataset: source, numClasses: labelCount, ignoreIndex: config.data.ignoreLabel,
      predictions: images ? { index, sample, labels in
        guard index == 0, let truth = sample.label else { return }
        shown = [("val/image", sample.image), ("val/prediction", try colormap.colorize(labels)),
                 ("val/ground_truth", try colormap.colorize(truth))]
      } : nil)
    return (scores, shown, source.count)
  }

  /// The manifest of the trained model.
  func manifest(_ config: TrainingConfig, task: ModelManifest.Task, classNames: [String], colormap: Colormap) -> ModelManifest {
    let labels = task == .foreground ? 2 : outputChannels
    return ModelManifest(
      model: config.model.name, task: task, classes: outputChannels, classNames: Array(classNames.prefix(labels)),
      normalization: network.inputNormalization, colors: ModelManifest.colors(of: colormap, count: labels),
      outputStride: config.model.outputStride, atrousRates: config.model.atrousRates, auxiliaryHead: network.outputNames.contains("aux"),
      separable: config.model.separableConv)
  }
}
