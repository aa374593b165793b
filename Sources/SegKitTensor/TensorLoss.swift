import CTorchShim

/// How a loss folds its per-element values into a result, as PyTorch's `reduction`.
public enum LossReduction: Sendable {
  /// Per-element losses, shaped like the target.
  case none
  /// The (weighted) mean.
  case mean
  case sum

  var code: sk_reduction {
    switch self {
    case .none: return SK_REDUCTION_NONE
    case .mean: return SK_REDUCTION_MEAN
    case .sum: return SK_REDUCTION_SUM
    }
  }
}

// The loss kernels of libtorch, as torch.nn.functional exposes them. They live
// here, beside the handle they need; SegKitNN builds its losses on them.
extension Tensor {
  /// F.cross_entropy of these logits (N, C, ...) against int64 class indices (N, ...).
  /// With `weight`, the mean is sum(w[y]·l) / sum(w[y]) over pixels not equal to `ignoreIndex`.
  public func crossEntropy(
    target: Tensor, weight: Tensor? = nil, reduction: LossReduction = .mean, ignoreIndex: Int = -100,
    labelSmoothing: Double = 0
  ) throws -> Tensor {
    try produce {
      sk_cross_entropy(handle, target.handle, weight?.handle, reduction.code, Int64(ignoreIndex), labelSmoothing, $0)
    }
  }

  /// F.binary_cross_entropy_with_logits: the numerically stable sigmoid cross-entropy,
  /// `weight` scaling each element and `posWeight` the positive term.
  public func binaryCrossEntropyWithLogits(
    target: Tensor, weight: Tensor? = nil, posWeight: Tensor? = nil, reduction: LossReduction = .mean
  ) throws -> Tensor {
    try produce { sk_bce_with_logits(handle, target.handle, weight?.handle, posWeight?.handle, reduction.code, $0) }
  }

  /// torch.linalg.vector_norm over every element (`ord` may be `.infinity`).
  public func vectorNorm(ord: Double = 2) throws -> Tensor {
    try produce { sk_vector_norm(handle, ord, $0) }
  }
}
