/// The mean end-point error: the Euclidean distance between predicted and true flow
/// vectors [N, 2, H, W], averaged over pixels and the batch.
public func endPointError(_ predicted: Tensor, _ truth: Tensor) throws -> Tensor {
  try (predicted - truth).norm(dims: [1]).mean()
}

/// FlowNet's training loss: at each flow output of the network (finest first, each a
/// power-of-two fraction of the input), the end-point error against the true flow
/// (in pixels, at the input size) average-pooled to that resolution and divided by
/// `flowScale` (the network predicts flow / 20), times the output's weight.
/// FlowNet's weights, finest (1/4) to coarsest (1/64): 0.32, 0.08, 0.02, 0.01, 0.005.
public func multiScaleEndPointError(predictions: [Tensor], flow: Tensor, weights: [Double], flowScale: Double) throws -> Tensor {
  guard predictions.count == weights.count, !predictions.isEmpty else {
    throw NNError("multi-scale end-point error: \(weights.count) weights for \(predictions.count) flow outputs")
  }
  let target = try flow / flowScale
  var total: Tensor?
  for (prediction, weight) in zip(predictions, weights) {
    let factor = flow.shape[2] / max(1, prediction.shape[2])
    guard factor >= 1, prediction.shape[2] * factor == flow.shape[2], prediction.shape[3] * factor == flow.shape[3] else {
      throw NNError("multi-scale end-point error: a \(prediction.shape) output is not a whole fraction of the \(flow.shape) flow")
    }
    let pooled = factor == 1 ? target : try target.avgPool2d(kernel: Size2(factor, factor))
    let term = try endPointError(prediction, pooled) * weight
    total = try total.map { try $0 + term } ?? term
  }
  return total!
}
