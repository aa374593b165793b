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
    try beginConvolutionCalibration()
    do {
      try Torch.withNoGrad { try calibrate() }
    } catch {
      cancelConvolutionCalibration()
      throw error
    }
    return try finishConvolutionCalibration()
  }

  /// The convolutions int8 applies to: ungrouped ones (see `quantizeConvolutions`).
  private var quantizableConvolutions: [Conv2d] { modules().compactMap { $0 as? Conv2d }.filter { $0.groups == 1 } }

  /// Starts a calibration that runs while the caller goes on (a video segmenter
  /// calibrating on a sequence's first frames, which it segments in float32 meanwhile):
  /// every convolution returns to float32 and records its input range until
  /// `finishConvolutionCalibration`.
  public func beginConvolutionCalibration() throws {
    guard !isTraining else { throw NNError("quantizeConvolutions: call eval() first") }
    for conv in quantizableConvolutions {
      guard conv.weight.device == .cpu, conv.weight.dtype == .float32 else {
        throw NNError("quantizeConvolutions: int8 runs float32 CPU models, this one has \(conv.weight.dtype) weights on \(conv.weight.device)")
      }
      conv.int8 = nil
      conv.calibration = .init()
    }
  }

  /// Ends a calibration without quantising.
  public func cancelConvolutionCalibration() {
    for conv in quantizableConvolutions { conv.calibration = nil }
  }

  /// Ends a calibration: each convolution that saw an input runs in int8 from its range.
  /// Returns how many did.
  @discardableResult
  public func finishConvolutionCalibration() throws -> Int {
    let convolutions = quantizableConvolutions
    defer { for conv in convolutions { conv.calibration = nil } }
    var count = 0
    for conv in convolutions {
      guard let calibration = conv.calibration, let range = calibration.input else { continue }
      let (weight, bias) = conv.inferenceWeightAndBias
      conv.int8 = try Int8Convolution(
        weight: weight, bias: bias, stride: conv.stride, padding: conv.padding, dilation: conv.dilation,
        groups: conv.groups, inputRange: range, outputRange: calibration.output, inputShape: calibration.shape)
      count += 1
    }
    return count
  }
}
