/// Pixel-wise softmax cross-entropy of logits (N, C, H, W) against int64 labels (N, H, W),
/// exactly F.cross_entropy: pixels labelled `ignoreIndex` contribute nothing, and with
/// `classWeights` (C) the mean is sum(w[y]·l) / sum(w[y]) over the pixels not ignored.
/// `labelSmoothing` mixes the one-hot target with the uniform distribution.
public func softmaxCrossEntropy(
  logits: Tensor, labels: Tensor, ignoreIndex: Int = 255, classWeights: Tensor? = nil,
  labelSmoothing: Double = 0, reduction: LossReduction = .mean
) throws -> Tensor {
  try logits.crossEntropy(
    target: labels, weight: classWeights, reduction: reduction, ignoreIndex: ignoreIndex,
    labelSmoothing: labelSmoothing)
}

/// DeepLab's online hard example mining: only the hardest pixels of the batch count.
public struct HardPixelMining: Sendable {
  /// Fraction of pixels kept once mining is fully on (DeepLab's `top_k_percent_pixels`).
  public var topKPercentPixels: Double
  /// Steps over which the kept fraction ramps down from 1 (DeepLab's
  /// `hard_example_mining_step`); 0 keeps `topKPercentPixels` from the start.
  public var miningSteps: Int

  public init(topKPercentPixels: Double, miningSteps: Int = 0) {
    self.topKPercentPixels = topKPercentPixels
    self.miningSteps = miningSteps
  }

  /// Pixels kept out of `pixelCount` at `globalStep`, as DeepLab's train_utils computes it:
  ///   ratio = min(1, step / hard_example_mining_step)
  ///   k = int((ratio · top_k_percent_pixels + (1 − ratio)) · num_pixels)
  /// so the kept fraction falls linearly from 1 at step 0 to `topKPercentPixels`.
  public func keptPixels(of pixelCount: Int, globalStep: Int) -> Int {
    let ratio = miningSteps == 0 ? 1 : Swift.min(1, Double(globalStep) / Double(miningSteps))
    return Int((ratio * topKPercentPixels + (1 - ratio)) * Double(pixelCount))
  }
}

/// Softmax cross-entropy averaged over the hardest pixels only: the k largest
/// (class-weighted) pixel losses of the whole batch, k from `mining`, divided by how
/// many of them are non-zero, as DeepLab does (ignored pixels have loss 0, so they
/// are never counted). Zero when every kept loss is zero.
public func hardPixelCrossEntropy(
  logits: Tensor, labels: Tensor, mining: HardPixelMining, globalStep: Int, ignoreIndex: Int = 255,
  classWeights: Tensor? = nil, labelSmoothing: Double = 0
) throws -> Tensor {
  let pixelLosses = try softmaxCrossEntropy(
    logits: logits, labels: labels, ignoreIndex: ignoreIndex, classWeights: classWeights,
    labelSmoothing: labelSmoothing, reduction: .none
  ).reshape([-1])
  let k = mining.keptPixels(of: pixelLosses.count, globalStep: globalStep)
  let hardest = try pixelLosses.topk(k).values
  let total = try hardest.sum()
  let present = try (hardest .!= 0).sum().item()
  // DeepLab's _div_maybe_zero; multiplying keeps the graph when nothing is present.
  return present > 0 ? try total / Swift.max(present, 1e-5) : try total * 0
}

/// A network's total loss with auxiliary heads: main + weight · Σ auxiliary.
public func lossWithAuxiliary(main: Tensor, auxiliary: [Tensor], weight: Double) throws -> Tensor {
  try auxiliary.reduce(main) { total, aux in try total + aux * weight }
}
