/// Soft multi-class Dice loss of logits (N, C, H, W) against int64 labels (N, H, W).
/// With p = softmax(logits) and t the one-hot labels, summed over the batch and pixels
/// (ignored pixels left out):
///   dice_c = (2 Σ p_c·t_c + smooth) / (Σ p_c + Σ t_c + smooth),   loss = 1 − mean_c dice_c.
/// `smooth` keeps classes absent from both prediction and labels at dice 1.
public func softDiceLoss(logits: Tensor, labels: Tensor, smooth: Double = 1, ignoreIndex: Int? = 255) throws -> Tensor {
  let classes = logits.shape[1]
  let probabilities = try logits.softmax(dim: 1)
  var target = labels
  var mask: Tensor?
  if let ignoreIndex {
    let ignored = try labels .== Double(ignoreIndex)
    target = try labels.maskedFill(ignored, 0)
    mask = try ignored.logicalNot().unsqueeze(1).to(logits.dtype)
  }
  var oneHot = try target.oneHot(numClasses: classes).permute(0, 3, 1, 2).to(logits.dtype)
  var predicted = probabilities
  if let mask {
    oneHot = try oneHot * mask
    predicted = try predicted * mask
  }
  let reduced = [0, 2, 3]
  let intersection = try (predicted * oneHot).sum(dims: reduced)
  let cardinality = try predicted.sum(dims: reduced) + oneHot.sum(dims: reduced)
  let dice = try (intersection * 2 + smooth) / (cardinality + smooth)
  return try 1 - dice.mean()
}
