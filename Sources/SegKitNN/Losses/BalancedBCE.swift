/// How the class-balanced binary cross-entropy is scaled.
public enum BalancedLossNormalization: Sendable {
  /// The plain weighted sum, as OSVOS's TensorFlow code returns it.
  case sum
  /// Divided by the number of pixels (the PyTorch OSVOS `size_average`).
  case perPixel
  /// Divided by the batch size (the PyTorch OSVOS `batch_average`).
  case perImage
}

/// OSVOS's class-balanced sigmoid cross-entropy of logits against a label map of the
/// same shape (pixels above 0.5 are foreground). With P foreground and M background
/// pixels out of T = P + M in the whole tensor, and the per-pixel binary cross-entropy
///   l(x, y) = max(x, 0) − x·y + log(1 + exp(−|x|)),
/// the loss is  (M / T) · Σ_{y=1} l  +  (P / T) · Σ_{y=0} l,
/// so the rarer class weighs more. OSVOS writes l as
/// −[x·(y − [x ≥ 0]) − log(1 + exp(x − 2x·[x ≥ 0]))], the same stable form; the weights
/// are constants, not differentiated.
public func classBalancedSigmoidCrossEntropy(
  logits: Tensor, labels: Tensor, normalization: BalancedLossNormalization = .sum
) throws -> Tensor {
  let foreground = try (labels .> 0.5).to(logits.dtype)
  let total = Double(foreground.count)
  let positives = try foreground.sum().item()
  let negatives = total - positives
  // negatives/T on foreground pixels, positives/T on background pixels.
  let weight = try foreground * ((negatives - positives) / total) + positives / total
  let loss = try logits.binaryCrossEntropyWithLogits(target: foreground, weight: weight, reduction: .sum)
  switch normalization {
  case .sum: return loss
  case .perPixel: return try loss / total
  case .perImage: return try loss / Double(logits.shape.first ?? 1)
  }
}
