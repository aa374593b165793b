import CTorchShim

/// A convolution run in int8 by oneDNN's quantised CPU kernels (VNNI, AMX), for
/// post-training quantisation: the weight quantised per output channel
/// (symmetric, scale max|w|/127) and packed once; each input quantised per tensor to
/// uint8 with the scale and zero point its calibrated range gives; the bias added
/// and the output returned in float32, so the layers around it are unchanged.
public final class Int8Convolution {
  public let inputScale: Double
  public let inputZeroPoint: Int
  /// The per-channel weight scales, float32 [O].
  public let weightScales: Tensor
  let weightZeroPoints: Tensor
  let packedWeight: Tensor
  let bias: Tensor?
  let stride: Size2, padding: Size2, dilation: Size2, groups: Int

  /// Quantises `weight` for inputs seen in `inputRange` (widened to include 0, as
  /// an affine uint8 range must); `inputShape` hints oneDNN's weight layout.
  public init(
    weight: Tensor, bias: Tensor?, stride: Size2, padding: Size2, dilation: Size2, groups: Int,
    inputRange: ClosedRange<Double>, inputShape: [Int]
  ) throws {
    guard weight.rank == 4, inputShape.count == 4, weight.device == .cpu else {
      throw TorchError("Int8Convolution: a 4-D CPU weight and a 4-D input shape are needed, got \(weight.shape) and \(inputShape)")
    }
    let low = Swift.min(inputRange.lowerBound, 0), high = Swift.max(inputRange.upperBound, 0)
    // Without VNNI, x86 kernels multiply uint8 by int8 in pairs summed into int16
    // (vpmaddubsw), which saturates past 7-bit inputs: those CPUs get half the input
    // range, as PyTorch's reduce_range does for them.
    let levels = Torch.cpuHasVNNI ? 255 : 127
    let scale = high > low ? (high - low) / Double(levels) : 1
    let zeroPoint = Swift.min(levels, Swift.max(0, Int((-low / scale).rounded())))
    (inputScale, inputZeroPoint) = (scale, zeroPoint)
    let w = try weight.detach().to(.float32).contiguous()
    let perChannel = try w.abs().max(dims: [1, 2, 3]) / 127
    let scales = try Tensor.where(perChannel .> 0, perChannel, Tensor.ones(perChannel.shape))
    weightScales = scales
    let quantized = try (w / scales.reshape([-1, 1, 1, 1])).round().clamp(min: -128, max: 127).to(.int8)
    weightZeroPoints = try Tensor.zeros(perChannel.shape, dtype: .int64)
    self.bias = try bias.map { try $0.detach().to(.float32) }
    (self.stride, self.padding, self.dilation, self.groups) = (stride, padding, dilation, groups)
    let shape = inputShape.map(Int64.init)
    packedWeight = try withPairs([stride, padding, dilation]) { p in
      try produce { out in
        shape.withUnsafeBufferPointer {
          sk_qconv_prepack(quantized.handle, scales.handle, scale, Int64(zeroPoint), p[0], p[1], p[2],
                           Int64(groups), $0.baseAddress, out)
        }
      }
    }
  }

  /// The convolution of float32 `x`, then `activation` (inside the kernel for ReLU,
  /// ReLU6 and hard swish, after it otherwise), in float32.
  public func callAsFunction(_ x: Tensor, then activation: ConvolutionActivation? = nil) throws -> Tensor {
    let inKernel: Bool
    switch activation {
    case nil, .relu, .relu6, .hardswish: inKernel = true
    default: inKernel = false
    }
    let (name, scalars) = inKernel ? activation?.onednn ?? ("none", []) : ("none", [])
    let y = try withPairs([stride, padding, dilation]) { p in
      try produce { out in
        scalars.withUnsafeBufferPointer { values in
          sk_qconv2d(x.handle, inputScale, Int64(inputZeroPoint), packedWeight.handle, weightScales.handle,
                     weightZeroPoints.handle, bias?.handle, p[0], p[1], p[2], Int64(groups), name, values.baseAddress,
                     Int32(values.count), out)
        }
      }
    }
    return inKernel ? y : try activation?.apply(y) ?? y
  }
}
