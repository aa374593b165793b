import Foundation

/// How a parent network is fine-tuned on a sequence's first frame (OSVOS's one-shot
/// step). The defaults suit a CPU: Adam on the per-pixel balanced loss rather than
/// the references' SGD at 1e-8 on the summed loss for thousands of steps.
public struct FineTuningSettings: Sendable {
  public var steps = 100
  public var learningRate = 1e-4
  /// Batches (differently augmented copies of the first frame) averaged per step.
  public var gradientAccumulation = 1
  public var normalization = BalancedLossNormalization.perPixel
  /// OSVOS's: flips, scale 0.75–1.25, rotation ±30°.
  public var augmentation = Augmentation.osvos()
  public var seed: UInt64 = 0
  public var device = Device.cpu

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

  /// `parent`: the weights of a one-channel `modelName` (e.g. osvos_vgg16's parent training).
  public init(modelName: String, parent: StateDict, settings: FineTuningSettings = FineTuningSettings()) throws {
    guard settings.steps >= 1, settings.gradientAccumulation >= 1, settings.learningRate > 0 else {
      throw TrainingError("fine-tuning needs at least one step, one batch per step and a positive learning rate")
    }
    self.modelName = modelName
    self.parent = parent
    self.settings = settings
  }

  public func start(firstFrame: Image, mask: Image?) throws -> Image {
    guard let mask else { throw TrainingError("one-shot fine-tuning needs the first frame's object mask") }
    guard mask.width == firstFrame.width, mask.height == firstFrame.height, mask.channels == 1 else {
      throw TrainingError("the first frame's mask is \(mask.width)×\(mask.height)×\(mask.channels), the frame \(firstFrame.width)×\(firstFrame.height): need one channel of the frame's size")
    }
    var object = mask
    for i in object.pixels.indices { object.pixels[i] = object.pixels[i] != 0 ? 1 : 0 }

    let model = try ModelZoo.make(modelName, classes: 1)
    do {
      try model.loadStateDict(parent)
    } catch {
      throw TrainingError("the parent weights do not fit \(modelName): \(error)")
    }
    try model.to(device: settings.device)
    model.train()
    // One augmented frame per batch: the parent's batch-norm statistics (an encoder
    // with batch norm) describe frames better than a batch of one would.
    for case let norm as BatchNorm2d in model.modules() { norm.statisticsFrozen = true }
    let task = try FirstFrameTask(
      model: model, sample: Sample(name: "first frame", image: firstFrame, label: object), settings: settings)
    var loop = LoopSettings(totalSteps: settings.steps)
    loop.gradientAccumulation = settings.gradientAccumulation
    loop.seed = settings.seed
    (loop.logInterval, loop.checkpointInterval) = (Int.max, Int.max)
    let optimizer = try Adam(model.parameterGroups(), weightDecay: 0)
    let schedule = try LearningRateSchedule(.constant(settings.learningRate))
    _ = try TrainingLoop(task: task, optimizer: optimizer, schedule: schedule, settings: loop).train()
    segmenter = try ImageSegmenter(model: model, device: settings.device, normalization: model.inputNormalization)
    return object
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

/// The first frame and its mask, drawn again and again with fresh augmentation.
final class FirstFrameTask: TrainingTask {
  let network: any SegmentationNetwork
  let trainLoader: DataLoader
  let normalization: BalancedLossNormalization
  var model: Module { network }
  var summary: String { "one-shot fine-tuning" }

  init(model: any SegmentationNetwork, sample: Sample, settings: FineTuningSettings) throws {
    network = model
    normalization = settings.normalization
    var augmentation = settings.augmentation
    augmentation.normalization = model.inputNormalization
    augmentation.labelPadding = 0  // outside the frame is background
    trainLoader = try DataLoader(
      source: OneSample(sample: sample), augmentation: augmentation,
      options: LoaderOptions(batchSize: 1, shuffle: false, seed: settings.seed, workers: 0))
  }

  func parameterGroups() throws -> [ParameterGroup] { network.parameterGroups() }

  /// The fused output only, as every OSVOS release fine-tunes.
  func loss(_ batch: Batch, step: Int) throws -> LossTerms {
    guard let labels = batch.labels else { throw TrainingError("the first frame has no mask") }
    let device = network.parameters().first?.device ?? .cpu
    let output = try network(try batch.images.to(device))
    let foreground = try (labels.to(device) .== 1).to(.float32).unsqueeze(1)
    let out = try classBalancedSigmoidCrossEntropy(logits: output.out, labels: foreground, normalization: normalization)
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
