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
      conv.kernelChoice?.measured = [:]  // measured against float32: int8 is measured anew
      conv.int8 = try Int8Convolution(
        weight: weight, bias: bias, stride: conv.stride, padding: conv.padding, dilation: conv.dilation,
        groups: conv.groups, inputRange: range, outputRange: calibration.output, inputShape: calibration.shape)
      count += 1
    }
    return count
  }
}

/// One layer of a chain that int8 activations flow through (see `Int8Chain`).
enum Int8Step {
  case convolution(Int8Convolution, ConvolutionActivation?)
  case maxPool(MaxPool2d)
  /// Fused into the convolution before it, folded into it, or nothing in evaluation mode.
  case passThrough
}

/// Layers that run one after another with int8 activations between them: quantised
/// convolutions whose outputs calibration saw (their activations inside the kernel),
/// the activations and batch norms fused or folded into them, max pooling and
/// evaluation-mode dropout. Built only when every layer is one of these.
public struct Int8Chain {
  let steps: [Int8Step]

  /// The chain of `layers` in evaluation mode on float32 CPU input without gradients,
  /// or nil where a layer has no int8 form (then they run as they are).
  public init?(_ layers: [any Layer], for x: Tensor) {
    guard let first = layers.first as? Conv2d, !first.isTraining, x.device == .cpu, x.dtype == .float32,
          !Torch.isGradEnabled, !OperationTrace.isRecording
    else { return nil }
    var steps: [Int8Step] = []
    for layer in layers {
      switch layer {
      case let conv as Conv2d:
        guard let int8 = conv.int8, int8.output != nil else { return nil }
        switch conv.fusedActivation {
        case nil, .relu?, .relu6?, .hardswish?: steps.append(.convolution(int8, conv.fusedActivation))
        default: return nil
        }
      case let pool as MaxPool2d where pool.dilation == Size2(1):
        steps.append(.maxPool(pool))
      case let activation as FusableActivation where activation.fusedIntoConvolution:
        steps.append(.passThrough)
      case let norm as BatchNorm2d where norm.isFolded:
        steps.append(.passThrough)
      case is Dropout, is Dropout2d:
        steps.append(.passThrough)
      default:
        return nil
      }
    }
    self.steps = steps
  }

  /// How the chain's input is quantised: as its first convolution's.
  public var input: AffineQuantization {
    guard case .convolution(let first, _) = steps[0] else { preconditionFailure("a chain starts with a convolution") }
    return first.input
  }

  /// The chain's output for float32 `x`, quantised once.
  public func callAsFunction(_ x: Tensor) throws -> QuantizedActivation {
    var output: QuantizedActivation?
    try run(x) { index, h in
      if index == steps.count - 1 { output = h }
      return true
    }
    return output!
  }

  /// Runs the chain on `x`, quantised once; `keep(i, h)` is given the activations after
  /// layer `i` (to dequantise the ones the caller reads), and returns false to stop early.
  public func run(_ x: Tensor, keep: (Int, QuantizedActivation) throws -> Bool) throws {
    var h = try QuantizedActivation(quantizing: x, input)
    for (index, step) in steps.enumerated() {
      switch step {
      case .convolution(let conv, let activation): h = try conv(h, then: activation)
      case .maxPool(let pool):
        h = try h.maxPool2d(kernel: pool.kernelSize, stride: pool.stride, padding: pool.padding, ceilMode: pool.ceilMode)
      case .passThrough: break
      }
      guard try keep(index, h) else { return }
    }
  }
}
