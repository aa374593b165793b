import Foundation

/// How a parent network is fine-tuned on a sequence's first frame (OSVOS's one-shot
/// step). The defaults suit a CPU: Adam on the per-pixel balanced loss rather than
/// the references' SGD at 1e-8 on the summed loss for thousands of steps. OSVOS-PyTorch's
/// own: `.sgd`, learning rate 1e-8, `.sum`, 2,000 steps of 5 batches, weight decay
/// 0.0002, reference learning rates.
public struct FineTuningSettings: Sendable {
  public enum OptimizerKind: String, CaseIterable, Sendable {
    case adam
    /// With momentum 0.9, as every OSVOS release.
    case sgd
  }

  public var steps = 100
  public var learningRate = 1e-4
  public var optimizer = OptimizerKind.adam
  /// On weights and biases alike, unless `referenceLearningRates` (weights only).
  public var weightDecay = 0.0
  /// OSVOS's per-layer multipliers (biases ×2, side scores ×0.1, fuse ×0.01); OSVOS models only.
  public var referenceLearningRates = false
  /// Batches (differently augmented copies of the first frame) averaged per step.
  public var gradientAccumulation = 1
  public var normalization = BalancedLossNormalization.perPixel
  /// OSVOS's: flips, scale 0.75–1.25, rotation ±30°.
  public var augmentation = Augmentation.osvos()
  public var seed: UInt64 = 0
  public var device = Device.cpu
  /// The arithmetic the fine-tuned copy segments the sequence in; int8 calibrates on
  /// the first frame.
  public var precision = InferencePrecision.fp32

  public init() {}
}

/// Segments a sequence as OSVOS does: a copy of the parent is fine-tuned on the first
/// frame and its mask (through the one training loop, with no run folder: nothing is
/// written), then every following frame is segmented on its own. One object: the
/// mask's non-zero pixels (DAVIS 2016's 255; for DAVIS 2017, one object's mask at a time).
public final class OneShotSegmenter: SequenceSegmenter {
  public let modelName: String
  public let parent: StateDict
  public let settings: FineTuningSettings
  /// The fine-tuned copy of the current sequence.
  public private(set) var segmenter: ImageSegmenter?
  /// Asked between fine-tuning steps; true stops `start` with `StoppedOnRequest`.
  public var shouldStop: () -> Bool = { false }

  /// `parent`: the weights of a one-channel `modelName` (e.g. osvos_vgg16's parent training).
  public init(modelName: String, parent: StateDict, settings: FineTuningSettings = FineTuningSettings()) throws {
    guard settings.steps >= 1, settings.gradientAccumulation >= 1, settings.learningRate > 0, settings.weightDecay >= 0 else {
      throw TrainingError("fine-tuning needs at least one step, one batch per step, a positive learning rate and no negative weight decay")
    }
    guard ModelFamily(name: modelName)?.isMaskRNN != true else {
      throw TrainingError("\(modelName) segments with MaskRNNObjectsSegmenter (its fine-tuning: OneShotSegmenter.fineTunedCopy)")
    }
    self.modelName = modelName
    self.parent = parent
    self.settings = settings
  }

  public func start(firstFrame: Image, mask: Image?) throws -> Image {
    let object = try Image.objectMask(mask, of: firstFrame)
    let model = try Self.fineTunedCopy(modelName: modelName, parent: parent, firstFrame: firstFrame, object: object,
                                       settings: settings, shouldStop: shouldStop)
    segmenter = try ImageSegmenter(model: model, device: settings.device, normalization: model.inputNormalization,
                                   precision: settings.precision, calibration: [firstFrame])
    return object
  }

  /// A copy of the parent (`modelName`'s weights) fine-tuned on the first frame and one
  /// object's 0/1 mask through the training loop, writing nothing. A MaskRNN copy reads
  /// that mask, spoilt afresh each step, as its previous mask, and `forwardFlow` (the
  /// first frame's flow to the second; zero when nil) as its flow to the next frame.
  public static func fineTunedCopy(
    modelName: String, parent: StateDict, firstFrame: Image, object: Image, forwardFlow: FlowField? = nil,
    settings: FineTuningSettings, shouldStop: () -> Bool = { false }
  ) throws -> any SegmentationNetwork {
    if let forwardFlow, forwardFlow.width != firstFrame.width || forwardFlow.height != firstFrame.height {
      throw TrainingError("a \(forwardFlow.width)×\(forwardFlow.height) flow for a \(firstFrame.width)×\(firstFrame.height) first frame")
    }
    let model: any SegmentationNetwork
    do {
      if case .maskRNN(let encoder) = try ModelFamily.parse(modelName) {
        let maskRNN = try MaskRNN.matching(parent, encoder: encoder)
        try maskRNN.load(parent)
        model = maskRNN
      } else {
        model = try ModelZoo.make(modelName, classes: 1)
        try model.loadStateDict(parent)
      }
    } catch {
      throw TrainingError("the parent weights do not fit \(modelName): \(error)")
    }
    try model.to(device: settings.device)
    model.train()
    // One augmented frame per batch: the parent's batch-norm statistics (an encoder
    // with batch norm) describe frames better than a batch of one would.
    for case let norm as BatchNorm2d in model.modules() { norm.statisticsFrozen = true }
    let task = try FirstFrameTask(
      model: model, sample: Sample(name: "first frame", image: firstFrame, label: object), forwardFlow: forwardFlow, settings: settings)
    var loop = LoopSettings(totalSteps: settings.steps)
    loop.gradientAccumulation = settings.gradientAccumulation
    loop.seed = settings.seed
    (loop.logInterval, loop.checkpointInterval) = (Int.max, Int.max)
    let groups: [ParameterGroup]
    if settings.referenceLearningRates {
      guard let osvos = model as? OSVOS else { throw TrainingError("\(modelName) has no reference per-layer learning rates") }
      groups = osvos.referenceParameterGroups()
    } else {
      groups = model.parameterGroups()
    }
    let optimizer: any Optimizer = settings.optimizer == .sgd
      ? try SGD(groups, momentum: 0.9, weightDecay: settings.weightDecay)
      : try Adam(groups, weightDecay: settings.weightDecay)
    let schedule = try LearningRateSchedule(.constant(settings.learningRate))
    let outcome = try TrainingLoop(task: task, optimizer: optimizer, schedule: schedule, settings: loop).train(shouldStop: shouldStop)
    if case .interrupted = outcome { throw StoppedOnRequest() }
    return model
  }

  public func next(_ frame: Image) throws -> Image {
    guard let segmenter else { throw TrainingError("next(_:) before start(firstFrame:mask:): the sequence has not begun") }
    return try segmenter.labels(frame)
  }

  /// The object's probability per pixel, [H, W] on the CPU (for merging several objects).
  public func probabilities(_ frame: Image) throws -> Tensor {
    guard let segmenter else { throw TrainingError("probabilities(_:) before start(firstFrame:mask:)") }
    return try segmenter.scores(frame).sigmoid().squeeze(dim: 0).squeeze(dim: 0)
  }
}

/// OSVOS on several objects: one fine-tuned copy of the parent per object of the
/// first mask; every later frame takes, per pixel, the object of highest probability
/// where that is above ½, else background (0). The first mask holds object ids
/// (DAVIS 2017's palette indices; 255 is void, not an object); a mask whose only
/// non-zero value is 255 (DAVIS 2016's 0/255) is one object, id 1.
public final class OneShotObjectsSegmenter: SequenceSegmenter {
  public let modelName: String
  public let parent: StateDict
  public let settings: FineTuningSettings
  /// Asked between objects' fine-tunings and before each frame; true stops with `StoppedOnRequest`.
  public var shouldStop: () -> Bool = { false }
  /// The objects of the current sequence and their fine-tuned segmenters.
  public private(set) var objects: [(id: Int, segmenter: OneShotSegmenter)] = []

  public init(modelName: String, parent: StateDict, settings: FineTuningSettings = FineTuningSettings()) {
    self.modelName = modelName
    self.parent = parent
    self.settings = settings
  }

  /// Fine-tunes one copy per object; returns the mask's object ids (void as background).
  public func start(firstFrame: Image, mask: Image?) throws -> Image {
    guard let mask else { throw TrainingError("one-shot segmentation needs the first frame's object mask") }
    let ids = ObjectMasks.ids(in: mask)
    guard !ids.isEmpty else { throw TrainingError("the first frame's mask holds no object (every pixel is 0)") }
    objects = []
    for id in ids {
      if shouldStop() { throw StoppedOnRequest() }
      let segmenter = try OneShotSegmenter(modelName: modelName, parent: parent, settings: settings)
      segmenter.shouldStop = shouldStop
      _ = try segmenter.start(firstFrame: firstFrame, mask: ObjectMasks.object(id, of: mask))
      objects.append((id, segmenter))
    }
    return ObjectMasks.labels(of: mask)
  }

  public func next(_ frame: Image) throws -> Image {
    guard !objects.isEmpty else { throw TrainingError("next(_:) before start(firstFrame:mask:): the sequence has not begun") }
    if shouldStop() { throw StoppedOnRequest() }
    return try ObjectMasks.merge(try objects.map { ($0.id, try $0.segmenter.probabilities(frame)) })
  }
}

/// The first frame and its mask, drawn again and again with fresh augmentation.
final class FirstFrameTask: TrainingTask {
  let network: any SegmentationNetwork
  let trainLoader: DataLoader
  let normalization: BalancedLossNormalization
  var model: Module { network }
  var summary: String { "one-shot fine-tuning" }

  init(model: any SegmentationNetwork, sample: Sample, forwardFlow: FlowField? = nil, settings: FineTuningSettings) throws {
    network = model
    normalization = settings.normalization
    var augmentation = settings.augmentation
    augmentation.normalization = model.inputNormalization
    augmentation.labelPadding = 0  // outside the frame is background
    // Scaled and rotated within the frame's own size, as OSVOS warps it.
    if augmentation.crop == nil { augmentation.crop = Size2(sample.image.height, sample.image.width) }
    let source: any SampleSource = model is MaskRNN
      ? FirstFrameWithPreviousMask(
        sample: sample, count: settings.steps * settings.gradientAccumulation, seed: settings.seed, forwardFlow: forwardFlow)
      : OneSample(sample: sample)
    trainLoader = try DataLoader(
      source: source, augmentation: augmentation, options: LoaderOptions(batchSize: 1, shuffle: false, seed: settings.seed, workers: 0))
  }

  func parameterGroups() throws -> [ParameterGroup] { network.parameterGroups() }

  /// The fused output only, as every OSVOS release fine-tunes.
  func loss(_ batch: Batch, step: Int) throws -> LossTerms {
    guard let labels = batch.labels else { throw TrainingError("the first frame has no mask") }
    let device = network.parameters().first?.device ?? .cpu
    let logits: Tensor
    if let maskRNN = network as? MaskRNN {
      let (image, mask, flows) = try MaskPropagationTask.inputs(batch, device: device)
      logits = try maskRNN.forward(image: image, warpedMask: mask, flowMagnitudes: flows).fused
    } else {
      logits = try network(try batch.images.to(device)).out
    }
    let foreground = try (labels.to(device) .== 1).to(.float32).unsqueeze(1)
    let out = try classBalancedSigmoidCrossEntropy(logits: logits, labels: foreground, normalization: normalization)
    return LossTerms(total: out, parts: [("out", out)])
  }

  func validate(step: Int) throws -> ValidationReport? { nil }
}

/// A source of one sample.
struct OneSample: SampleSource {
  let sample: Sample
  var count: Int { 1 }
  func loadSample(at index: Int) throws -> Sample { sample }
}

/// The first frame for MaskRNN's fine-tuning: its "previous mask" the frame's own mask
/// spoilt afresh for each read (`MaskPerturbation.training`, seeded by the index). Its
/// flow to the previous frame is zero (there is none); its flow to the next is the real
/// one when known, as tfvos gives frame 0 ‖f 0→1‖, so that the flow stream does not
/// learn to ignore its flow channels.
struct FirstFrameWithPreviousMask: SampleSource {
  let sample: Sample
  let count: Int
  let seed: UInt64
  var forwardFlow: FlowField? = nil

  func loadSample(at index: Int) throws -> Sample {
    guard let label = sample.label else { throw TrainingError("the first frame has no mask") }
    var random = SeededRandom(seed, UInt64(index))
    var drawn = sample
    drawn.masks[.previous] = MaskPerturbation.training.apply(to: label, random: &random)
    let zero = try FlowField(width: label.width, height: label.height, values: [Float](repeating: 0, count: 2 * label.width * label.height))
    drawn.flows = [.previous: zero, .next: forwardFlow ?? zero]
    return drawn
  }
}
