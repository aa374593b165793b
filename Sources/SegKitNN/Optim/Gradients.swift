/// Rescales the gradients so that their global norm is at most `maxNorm`, as
/// torch.nn.utils.clip_grad_norm_: the total norm is the `normType`-norm of the
/// per-parameter norms, every gradient is multiplied by min(1, maxNorm / (total + 1e-6)),
/// and the total (before clipping) is returned. Parameters without a gradient are skipped.
@discardableResult
public func clipGradNorm(_ parameters: [Tensor], maxNorm: Double, normType: Double = 2) throws -> Double {
  let grads = parameters.compactMap(\.grad)
  guard !grads.isEmpty else { return 0 }
  return try Torch.withNoGrad {
    let totalNorm = try Tensor.stack(grads.map { try $0.vectorNorm(ord: normType) }).vectorNorm(ord: normType)
    let scale = try (maxNorm / (totalNorm + 1e-6)).clamp(max: 1)
    for grad in grads { try grad.mul_(scale) }
    return try totalNorm.item()
  }
}

/// Averages gradients over several backward passes before one optimizer step (seed
/// 000's `iter_mean_grad`): the passes sum into `.grad`, and on the last one the sum
/// is divided by the count.
///
///     var accumulator = GradientAccumulator(iterations: 10)
///     for batch in batches {
///       try loss(batch).backward()
///       if try accumulator.accumulate(optimizer.parameters) {
///         try optimizer.step(learningRate: schedule(step)); try optimizer.zeroGrad()
///       }
///     }
public struct GradientAccumulator: Sendable {
  public let iterations: Int
  /// Backward passes summed since the last step.
  public private(set) var pending = 0

  public init(iterations: Int) throws {
    guard iterations > 0 else { throw NNError("GradientAccumulator: iterations must be positive, got \(iterations)") }
    self.iterations = iterations
  }

  /// Counts one backward pass. Returns true when `iterations` have been summed: the
  /// gradients then hold their mean and the caller should step and zero them.
  public mutating func accumulate(_ parameters: [Tensor]) throws -> Bool {
    pending += 1
    guard pending == iterations else { return false }
    pending = 0
    if iterations > 1 {
      try Torch.withNoGrad {
        for grad in parameters.compactMap(\.grad) { try grad.div_(Double(iterations)) }
      }
    }
    return true
  }
}
