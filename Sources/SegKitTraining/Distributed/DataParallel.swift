import Foundation

/// Data-parallel training over a process group, as PyTorch's DistributedDataParallel
/// does it: the same model on every rank (rank 0's weights and buffers broadcast at
/// the start), each rank a shard of every batch, and the gradients summed across
/// ranks during backward, before the optimizer step, so every rank takes the same step.
///
/// One difference from DDP: a rank's loss is weighted by its share of the global
/// loss normaliser (the valid pixels of a pixel-averaged loss) rather than by
/// 1 / world size. Shards differ in their void pixels, and only this weighting makes
/// N processes × batch b take the step of 1 process × batch N·b.
///
/// Gradients travel as DDP sends them: in buckets (flattened, one all-reduce each),
/// in reverse order of the parameters, each started by autograd hooks as soon as
/// backward has produced its gradients (`GradientExchange`).
public final class DataParallel {
  public let group: ProcessGroup
  public let firstBucketBytes: Int
  public let bucketBytes: Int
  /// Seconds spent after backward finishing the gradient exchange: the part that
  /// backward did not hide, waiting for slower ranks included.
  public private(set) var gradientSeconds = 0.0
  private var exchange: GradientExchange?

  public init(group: ProcessGroup, firstBucketBytes: Int = 1 << 20, bucketBytes: Int = 25 << 20) {
    self.group = group
    self.firstBucketBytes = max(1, firstBucketBytes)
    self.bucketBytes = max(1, bucketBytes)
  }

  public var role: ProcessRole { try! ProcessRole(rank: group.rank, worldSize: group.worldSize) }

  /// Makes every rank's parameters and buffers rank 0's.
  public func synchronize(_ model: Module) throws {
    try Torch.withNoGrad {
      for (_, tensor) in try model.stateDict() where tensor.dtype.isFloatingPoint || tensor.dtype == .int64 {
        try broadcastInPlace(tensor)
      }
    }
  }

  /// Sums each rank's `values` (loss sums, normalisers) over the ranks.
  public func sum(_ values: [Double]) throws -> [Double] {
    let tensor = try Tensor(values, shape: [values.count])
    try group.allReduce(tensor)
    return try tensor.toArray(Double.self)
  }

  /// A batch's share of the global batch, found before its backward pass: this
  /// rank's `normalizer` over the sum of all ranks', and the global batch's losses
  /// from each rank's `losses` (averages over its own normaliser). Backward through
  /// `loss × share` gives each rank its part of the global loss's gradient, so the
  /// parts only need adding (`sumGradientsDuringBackward`), and batch norm synchronised across
  /// ranks sees consistent gradients. One all-reduce for both.
  public func share(normalizer: Double, losses: [Double]) throws -> (share: Double, losses: [Double]) {
    let sums = try sum([normalizer] + losses.map { $0 * normalizer })
    let total = sums[0]
    guard total > 0 else { throw TrainingError("data parallel: the global loss normaliser is \(total); no valid pixels in the global batch?") }
    return (normalizer / total, sums.dropFirst().map { $0 / total })
  }

  /// Makes the next backward pass sum `parameters`' gradients over the ranks, each
  /// bucket as soon as backward has produced its gradients, after dividing them by
  /// `divisor` (the batches accumulated into them, averaged as a single process
  /// averages them). `finishGradientSum` waits for what backward did not hide.
  public func sumGradientsDuringBackward(of parameters: [Tensor], dividingBy divisor: Int = 1) throws {
    let trainable = parameters.filter(\.requiresGrad)
    if exchange.map({ $0.parameters.count != trainable.count || !zip($0.parameters, trainable).allSatisfy(===) }) ?? true {
      exchange = try GradientExchange(group: group, parameters: trainable, firstBucketBytes: firstBucketBytes, bucketBytes: bucketBytes)
    }
    try exchange!.arm(dividingBy: divisor)
  }

  /// Waits for the gradient sums armed by `sumGradientsDuringBackward` and writes
  /// them into the gradients.
  public func finishGradientSum() throws {
    guard let exchange else { throw TrainingError("data parallel: finishGradientSum without sumGradientsDuringBackward") }
    let start = Date()
    defer { gradientSeconds += Date().timeIntervalSince(start) }
    try exchange.finish()
  }

  /// Whether any rank asks to stop: every rank must stop at the same step, or the
  /// others would wait for it in their next all-reduce until the timeout.
  public func anyRank(_ flag: Bool) throws -> Bool {
    try sum([flag ? 1 : 0])[0] > 0
  }

  private func broadcastInPlace(_ tensor: Tensor) throws {
    if tensor.device == .cpu, tensor.isContiguous {
      try group.broadcast(tensor)
    } else {
      let copy = try tensor.to(.cpu).contiguous()
      try group.broadcast(copy)
      try tensor.copy_(copy)
    }
  }
}
