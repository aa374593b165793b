/// Which classes the Lovász-softmax loss averages over.
public enum LovaszClasses: Sendable {
  /// Only classes that occur in the labels (the paper's default).
  case present
  case all
}

/// The Lovász-softmax loss (Berman, Rannen Triki and Blaschko, CVPR 2018) of logits
/// (N, C, H, W) against int64 labels (N, H, W): a convex surrogate of 1 − IoU per
/// class. For class c, the pixel errors e = |[y = c] − softmax_c| are sorted in
/// decreasing order and dotted with the gradient of the Lovász extension of the
/// Jaccard loss at that order; the result is averaged over classes. `perImage`
/// computes it for each image and averages, otherwise the batch is one flat set of
/// pixels. Pixels labelled `ignoreIndex` are dropped.
public func lovaszSoftmaxLoss(
  logits: Tensor, labels: Tensor, ignoreIndex: Int? = 255, perImage: Bool = false, classes: LovaszClasses = .present
) throws -> Tensor {
  let probabilities = try logits.softmax(dim: 1)
  guard perImage else {
    return try lovaszSoftmaxFlat(probabilities, labels, ignoreIndex: ignoreIndex, classes: classes)
  }
  let perImageLosses = try (0..<logits.shape[0]).map { image in
    try lovaszSoftmaxFlat(
      probabilities[image].unsqueeze(0), labels[image].unsqueeze(0), ignoreIndex: ignoreIndex, classes: classes)
  }
  return try Tensor.stack(perImageLosses).mean()
}

/// The loss over all pixels of probabilities (N, C, H, W) and labels (N, H, W) taken as one set.
private func lovaszSoftmaxFlat(
  _ probabilities: Tensor, _ labels: Tensor, ignoreIndex: Int?, classes: LovaszClasses
) throws -> Tensor {
  let classCount = probabilities.shape[1]
  var pixels = try probabilities.permute(0, 2, 3, 1).reshape([-1, classCount])
  var pixelLabels = try labels.reshape([-1])
  if let ignoreIndex {
    let valid = try pixelLabels .!= Double(ignoreIndex)
    pixels = try pixels.maskedSelect(valid.unsqueeze(1)).reshape([-1, classCount])
    pixelLabels = try pixelLabels.maskedSelect(valid)
  }
  var classLosses: [Tensor] = []
  for c in 0..<classCount {
    let foreground = try (pixelLabels .== Double(c)).to(pixels.dtype)
    if classes == .present, try foreground.sum().item() == 0 { continue }
    let errors = try (foreground - pixels.select(dim: 1, index: c)).abs()
    let (sortedErrors, order) = try errors.sort(dim: 0, descending: true)
    let sortedForeground = try foreground.indexSelect(dim: 0, index: order)
    let weights = try lovaszJaccardGradient(sortedForeground).to(dtype: pixels.dtype, device: pixels.device)
    classLosses.append(try (sortedErrors * weights).sum())
  }
  // No class to average (every pixel ignored): zero, still attached to the graph.
  guard !classLosses.isEmpty else { return try pixels.sum() * 0 }
  return try Tensor.stack(classLosses).mean()
}

/// Gradient of the Lovász extension of the Jaccard loss for foreground indicators
/// sorted by decreasing error: with G foreground pixels in all and cumulative counts
/// up to position i, J_i = 1 − (G − fg_≤i) / (G + bg_≤i), and the gradient is
/// J_0, J_1 − J_0, J_2 − J_1, … It depends only on the labels, so it is computed on the
/// host in single precision, as the reference implementation does on the device.
private func lovaszJaccardGradient(_ sortedForeground: Tensor) throws -> Tensor {
  let foreground = try sortedForeground.toArray(Float.self)
  let total = foreground.reduce(0, +)
  var gradient = [Float](repeating: 0, count: foreground.count)
  var foregroundSoFar: Float = 0
  var backgroundSoFar: Float = 0
  var previousJaccard: Float = 0
  for (i, isForeground) in foreground.enumerated() {
    foregroundSoFar += isForeground
    backgroundSoFar += 1 - isForeground
    let jaccard = 1 - (total - foregroundSoFar) / (total + backgroundSoFar)
    gradient[i] = jaccard - previousJaccard
    previousJaccard = jaccard
  }
  return try Tensor(gradient)
}
