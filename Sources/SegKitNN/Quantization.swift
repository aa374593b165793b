extension Module {
  /// int8 post-training quantisation of the convolutions, for CPU inference after
  /// `foldBatchNorm` and `fuseActivations`: `calibrate` runs forward passes on a few
  /// representative inputs while every convolution records the range of its input;
  /// each then runs in int8 (`Int8Convolution`: per-channel weights, per-tensor
  /// inputs from that range, float32 in and out). Depthwise and grouped convolutions,
  /// memory-bound rather than compute-bound, stay in float32, as do convolutions the
  /// calibration never reached. Evaluation mode only; returning to training, or
  /// loading weights, undoes it. Returns how many convolutions were quantised.
  @discardableResult
  public func quantizeConvolutions(calibrate: () throws -> Void) throws -> Int {
    guard !isTraining else { throw NNError("quantizeConvolutions: call eval() first") }
    let convolutions = modules().compactMap { $0 as? Conv2d }.filter { $0.groups == 1 }
    for conv in convolutions {
      guard conv.weight.device == .cpu, conv.weight.dtype == .float32 else {
        throw NNError("quantizeConvolutions: int8 runs float32 CPU models, this one has \(conv.weight.dtype) weights on \(conv.weight.device)")
      }
      conv.int8 = nil
      conv.calibration = (nil, [])
    }
    defer { for conv in convolutions { conv.calibration = nil } }
    try Torch.withNoGrad { try calibrate() }
    var count = 0
    for conv in convolutions {
      guard let (range, shape) = conv.calibration, let range else { continue }
      let (weight, bias) = conv.inferenceWeightAndBias
      conv.int8 = try Int8Convolution(
        weight: weight, bias: bias, stride: conv.stride, padding: conv.padding, dilation: conv.dilation,
        groups: conv.groups, inputRange: range, inputShape: shape)
      count += 1
    }
    return count
  }
}
