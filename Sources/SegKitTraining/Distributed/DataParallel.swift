import Foundation

/// Data-parallel training over a process group, as PyTorch's DistributedDataParallel
/// does it: the same model on every rank (rank 0's weights and buffers broadcast at
/// the start), each rank a shard of every batch, and the gradients reduced across
/// ranks between backward and the optimizer step, so every rank takes the same step.
///
/// One difference from DDP: a rank's loss is weighted by its share of the global
/// loss normaliser (the valid pixels of a pixel-averaged loss) rather than by
/// 1 / world size. Shards differ in their void pixels, and only this weighting makes
/// N processes × batch b take the step of 1 process × batch N·b.
///
/// Gradients travel in buckets of up to `bucketBytes` (flattened, one all-reduce
/// each) after the whole backward pass; they are not overlapped with it.
public final class DataParallel {
  public let group: ProcessGroup
  public let bucketBytes: Int
  /// Seconds spent exchanging gradients (including waiting for slower ranks).
  public private(set) var gradientSeconds = 0.0

  public init(group: ProcessGroup, bucketBytes: Int = 25 << 20) {
    self.group = group
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
  /// parts only need adding (`sumGradients`), and batch norm synchronised across
  /// ranks sees consistent gradients. One all-reduce for both.
  public func share(normalizer: Double, losses: [Double]) throws -> (share: Double, losses: [Double]) {
    let sums = try sum([normalizer] + losses.map { $0 * normalizer })
    let total = sums[0]
    guard total > 0 else { throw TrainingError("data parallel: the global loss normaliser is \(total); no valid pixels in the global batch?") }
    return (normalizer / total, sums.dropFirst().map { $0 / total })
  }

  /// Replaces each gradient with its sum over the ranks, in flattened buckets.
  public func sumGradients(_ parameters: [Tensor]) throws {
    let start = Date()
    defer { gradientSeconds += Date().timeIntervalSince(start) }
    let grads = parameters.compactMap(\.grad)
    try Torch.withNoGrad {
      var bucket: [Tensor] = [], bytes = 0
      func flush() throws {
        guard !bucket.isEmpty else { return }
        let flat = try Tensor.cat(try bucket.map { try $0.reshape([-1]) })
        let device = flat.device
        let onHost = device == .cpu ? flat : try flat.to(.cpu)
        try group.allReduce(onHost)
        var offset = 0
        for grad in bucket {
          let count = grad.count
          try grad.copy_(try onHost.narrow(dim: 0, start: offset, length: count).view(grad.shape))
          offset += count
        }
        bucket = []
        bytes = 0
      }
      for grad in grads {
        let size = grad.count * grad.dtype.byteSize
        if bytes > 0, bytes + size > bucketBytes { try flush() }
        bucket.append(grad)
        bytes += size
      }
      try flush()
    }
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
