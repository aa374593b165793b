/// Batch normalisation over (N, C, H, W), as nn.BatchNorm2d, with torch's parameters
/// (weight, bias) and buffers (running_mean, running_var, num_batches_tracked).
public final class BatchNorm2d: Module, Layer {
  public let numFeatures: Int
  public let eps: Double
  /// Weight of the newest batch in the running statistics; nil keeps a cumulative average.
  public let momentum: Double?
  public let affine: Bool
  public let trackRunningStats: Bool
  /// When true the layer always normalises with its running statistics and never
  /// updates them, even in training mode (set by `Module.freeze(batchNormStatistics:)`).
  public var statisticsFrozen = false
  /// When set, training-mode statistics are those of every rank's batch in this
  /// group (`sync_batch_norm`), not of this process's batch alone.
  public var synchronization: ProcessGroup?

  public var weight: Tensor? { parameter("weight") }
  public var bias: Tensor? { parameter("bias") }
  public var runningMean: Tensor? { buffer("running_mean") }
  public var runningVar: Tensor? { buffer("running_var") }
  public var numBatchesTracked: Tensor? { buffer("num_batches_tracked") }

  public init(
    _ numFeatures: Int, eps: Double = 1e-5, momentum: Double? = 0.1, affine: Bool = true,
    trackRunningStats: Bool = true
  ) throws {
    self.numFeatures = numFeatures
    self.eps = eps
    self.momentum = momentum
    self.affine = affine
    self.trackRunningStats = trackRunningStats
    super.init()
    if affine {
      try registerParameter("weight", Tensor.ones([numFeatures]))
      try registerParameter("bias", Tensor.zeros([numFeatures]))
    }
    if trackRunningStats {
      registerBuffer("running_mean", try Tensor.zeros([numFeatures]))
      registerBuffer("running_var", try Tensor.ones([numFeatures]))
      registerBuffer("num_batches_tracked", try Tensor.zeros([], dtype: .int64))
    }
  }

  /// Set when this layer's evaluation-mode transform lives in the convolution before it.
  public internal(set) var isFolded = false

  /// Follows torch's _BatchNorm.forward step by step, so the running statistics match.
  public func forward(_ x: Tensor) throws -> Tensor {
    guard x.rank == 4 else { throw NNError("BatchNorm2d: expected 4D input (got \(x.rank)D input)") }
    if isFolded && !isTraining { return x }
    let training = isTraining && !statisticsFrozen
    var averagingFactor = momentum ?? 0
    if training, trackRunningStats, let counter = numBatchesTracked {
      try counter += 1
      if momentum == nil { averagingFactor = 1 / (try counter.item()) }
    }
    let updatesOrUsesBuffers = !training || trackRunningStats
    if training, let synchronization {
      return try x.syncBatchNorm(group: synchronization, weight: weight, bias: bias, runningMean: runningMean,
                                 runningVar: runningVar, momentum: averagingFactor, eps: eps)
    }
    return try x.batchNorm(
      weight: weight, bias: bias, runningMean: updatesOrUsesBuffers ? runningMean : nil,
      runningVar: updatesOrUsesBuffers ? runningVar : nil, training: training || runningMean == nil,
      momentum: averagingFactor, eps: eps)
  }
}

/// Group normalisation, as nn.GroupNorm: weight and bias of size `numChannels`.
public final class GroupNorm: Module, Layer {
  public let numGroups: Int
  public let numChannels: Int
  public let eps: Double
  public let affine: Bool

  public var weight: Tensor? { parameter("weight") }
  public var bias: Tensor? { parameter("bias") }

  public init(_ numGroups: Int, _ numChannels: Int, eps: Double = 1e-5, affine: Bool = true) throws {
    guard numGroups > 0, numChannels % numGroups == 0 else {
      throw NNError("GroupNorm: num_channels (\(numChannels)) must be divisible by num_groups (\(numGroups))")
    }
    self.numGroups = numGroups
    self.numChannels = numChannels
    self.eps = eps
    self.affine = affine
    super.init()
    if affine {
      try registerParameter("weight", Tensor.ones([numChannels]))
      try registerParameter("bias", Tensor.zeros([numChannels]))
    }
  }

  public func forward(_ x: Tensor) throws -> Tensor {
    try x.groupNorm(groups: numGroups, weight: weight, bias: bias, eps: eps)
  }
}
