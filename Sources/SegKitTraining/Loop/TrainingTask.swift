/// What differs between training tasks (semantic segmentation, foreground
/// segmentation, MaskRNN's mask propagation, flow estimation, first-frame
/// fine-tuning): the model, its parameter groups, the batches, the loss and the
/// validation. The
/// `TrainingLoop` does everything else once: steps, gradient accumulation and
/// clipping, the learning-rate schedule, seeding, exact resume, interruption,
/// checkpoints and the cadence of logs and validation.
public protocol TrainingTask: AnyObject {
  /// The network being trained; checkpoints hold its state dict.
  var model: Module { get }
  /// Where the training batches come from.
  var trainLoader: DataLoader { get }
  /// What is trained, for the log's first line ("unet_resnet18 (…) on cpu, 2000 training images").
  var summary: String { get }
  /// The optimizer's parameter groups (learning-rate multipliers, weight-decay overrides).
  func parameterGroups() throws -> [ParameterGroup]
  /// The loss of one batch for optimizer step `step` (0-based), in training mode.
  func loss(_ batch: Batch, step: Int) throws -> LossTerms
  /// Scores the model as it is at `step`; nil when the task has nothing to validate on.
  func validate(step: Int) throws -> ValidationReport?
}

/// A batch's loss: the total that is differentiated, and its named parts for the logs.
public struct LossTerms {
  public var total: Tensor
  /// Logged as `loss/<name>` (e.g. "out", "aux"); the total is `loss/total`.
  public var parts: [(name: String, value: Tensor)]

  /// What the total is averaged over (a pixel-averaged loss: its valid pixels), so
  /// that data-parallel ranks weigh their gradients by their share of the global
  /// batch; nil: every rank's batch weighs the same.
  public var normalizer: Double?

  public init(total: Tensor, parts: [(name: String, value: Tensor)] = [], normalizer: Double? = nil) {
    self.total = total
    self.parts = parts
    self.normalizer = normalizer
  }
}

/// The result of one validation, as the loop logs it.
public struct ValidationReport {
  /// The metrics, the first being the headline ("best" follows it).
  public var metrics: [(name: String, value: Double)]
  /// Whether a smaller headline is better (an end-point error), not a larger one (an IoU).
  public var lowerIsBetter: Bool
  /// TensorBoard scalars, e.g. ("val/mIoU", 0.9).
  public var scalars: [(tag: String, value: Double)]
  /// TensorBoard images, e.g. ("val/prediction", colourised labels).
  public var images: [(tag: String, image: Image)]
  /// The log line after "validation at step N: ".
  public var summary: String

  public init(metrics: [(name: String, value: Double)], scalars: [(tag: String, value: Double)] = [],
              images: [(tag: String, image: Image)] = [], summary: String, lowerIsBetter: Bool = false) {
    self.metrics = metrics
    self.lowerIsBetter = lowerIsBetter
    self.scalars = scalars
    self.images = images
    self.summary = summary
  }

  public var headline: (name: String, value: Double)? { metrics.first }
}
