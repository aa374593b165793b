import CTorchShim

/// A convolution run in int8 by oneDNN's quantised CPU kernels (VNNI, AMX), for
/// post-training quantisation: the weight quantised per output channel
/// (symmetric, scale max|w|/127) and packed once; each input quantised per tensor to
/// uint8 with the scale and zero point its calibrated range gives; the bias added
/// and the output returned in float32, so the layers around it are unchanged.
public final class Int8Convolution {
  /// How inputs are quantised: from the range calibration saw.
  public let input: AffineQuantization
  /// How outputs are requantised when int8 activations flow on (`QuantizedActivation`):
  /// from the range of outputs calibration saw; nil when it saw none.
  public let output: AffineQuantization?
  public var inputScale: Double { input.scale }
  public var inputZeroPoint: Int { input.zeroPoint }
  /// The per-channel weight scales, float32 [O].
  public let weightScales: Tensor
  let weightZeroPoints: Tensor
  let packedWeight: Tensor
  let bias: Tensor?
  let stride: Size2, padding: Size2, dilation: Size2, groups: Int

  /// Quantises `weight` for inputs seen in `inputRange` (and outputs, after the
  /// activation, in `outputRange`); `inputShape` hints oneDNN's weight layout.
  public init(
    weight: Tensor, bias: Tensor?, stride: Size2, padding: Size2, dilation: Size2, groups: Int,
    inputRange: ClosedRange<Double>, outputRange: ClosedRange<Double>? = nil, inputShape: [Int]
  ) throws {
    guard weight.rank == 4, inputShape.count == 4, weight.device == .cpu else {
      throw TorchError("Int8Convolution: a 4-D CPU weight and a 4-D input shape are needed, got \(weight.shape) and \(inputShape)")
    }
    let input = AffineQuantization(range: inputRange)
    let (scale, zeroPoint) = (input.scale, input.zeroPoint)
    self.input = input
    output = outputRange.map(AffineQuantization.init(range:))
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
    // Dequantised from int8 activations quantised as this convolution's input: read those.
    let source = x.int8Source.flatMap { $0.quantization == input ? $0.values : nil }
    let y = try withPairs([stride, padding, dilation]) { p in
      try produce { out in
        scalars.withUnsafeBufferPointer { values in
          if let source {
            return sk_qconv2d_u8(source.handle, input.scale, Int64(input.zeroPoint), packedWeight.handle, weightScales.handle,
                                 weightZeroPoints.handle, bias?.handle, p[0], p[1], p[2], Int64(groups), nil, 1, 0, 0, name,
                                 values.baseAddress, Int32(values.count), 0, 0, out)
          }
          return sk_qconv2d(x.handle, inputScale, Int64(inputZeroPoint), packedWeight.handle, weightScales.handle,
                            weightZeroPoints.handle, bias?.handle, p[0], p[1], p[2], Int64(groups), name, values.baseAddress,
                            Int32(values.count), out)
        }
      }
    }
    return inKernel ? y : try activation?.apply(y) ?? y
  }

  /// The convolution of int8 activations `x`, plus `residual` (int8 too) when given,
  /// then `activation` (ReLU, ReLU6 or hard swish; only ReLU after a residual), all
  /// inside one oneDNN kernel, requantised to int8 activations with `output`.
  /// Activations quantised otherwise than this convolution's input are requantised first.
  /// With `consumingResidual`, the kernel may write its result over the residual's
  /// values (the caller no longer needs them), saving a copy.
  public func callAsFunction(
    _ x: QuantizedActivation, adding residual: QuantizedActivation? = nil, consumingResidual: Bool = false,
    then activation: ConvolutionActivation? = nil
  ) throws -> QuantizedActivation {
    guard let output else { throw TorchError("Int8Convolution: calibration saw no output, so int8 activations cannot leave it") }
    let x = try x.requantized(input)
    let (name, scalars): (String, [Double])
    switch (activation, residual) {
    case (nil, _): (name, scalars) = ("none", [])
    case (.relu?, _), (.relu6?, nil), (.hardswish?, nil): (name, scalars) = activation!.onednn
    default: throw TorchError("Int8Convolution: \(activation!) cannot run inside the int8 kernel\(residual == nil ? "" : " after a residual")")
    }
    let values = try withPairs([stride, padding, dilation]) { p in
      try produce { out in
        scalars.withUnsafeBufferPointer { buffer in
          sk_qconv2d_u8(x.values.handle, input.scale, Int64(input.zeroPoint), packedWeight.handle, weightScales.handle,
                        weightZeroPoints.handle, bias?.handle, p[0], p[1], p[2], Int64(groups), residual?.values.handle,
                        residual?.quantization.scale ?? 1, Int64(residual?.quantization.zeroPoint ?? 0),
                        consumingResidual ? 1 : 0, name,
                        buffer.baseAddress, Int32(buffer.count), output.scale, Int64(output.zeroPoint), out)
        }
      }
    }
    return QuantizedActivation(values: values, quantization: output)
  }
}

/// Per-tensor affine quantisation to uint8: a value v is stored as round(v / scale) + zeroPoint.
public struct AffineQuantization: Equatable, Sendable {
  public let scale: Double
  public let zeroPoint: Int

  /// The quantisation of values seen in `range`, widened to include 0 (which an affine
  /// uint8 range must hold exactly, for zero padding).
  public init(range: ClosedRange<Double>) {
    let low = Swift.min(range.lowerBound, 0), high = Swift.max(range.upperBound, 0)
    // Without VNNI, x86 kernels multiply uint8 by int8 in pairs summed into int16
    // (vpmaddubsw), which saturates past 7-bit inputs: those CPUs get half the input
    // range, as PyTorch's reduce_range does for them.
    let levels = Torch.cpuHasVNNI ? 255 : 127
    scale = high > low ? (high - low) / Double(levels) : 1
    zeroPoint = Swift.min(levels, Swift.max(0, Int((-low / scale).rounded())))
  }
}

/// int8 activations between int8 layers, as ONNX Runtime's QDQ graphs keep them:
/// uint8 values (channels-last) with the quantisation that maps them back to float32.
/// A network quantises once where they start and dequantises where they end, instead
/// of around every convolution.
public struct QuantizedActivation {
  public let values: Tensor
  public let quantization: AffineQuantization

  public init(values: Tensor, quantization: AffineQuantization) {
    (self.values, self.quantization) = (values, quantization)
  }

  /// float32 `x` quantised (values past the range saturate).
  public init(quantizing x: Tensor, _ quantization: AffineQuantization) throws {
    let x = x.dtype == .float32 ? x : try x.to(.float32)
    values = try produce { sk_quantize_u8(x.handle, quantization.scale, Int64(quantization.zeroPoint), $0) }
    self.quantization = quantization
  }

  public var shape: [Int] { values.shape }

  /// The float32 values these stand for.
  public func dequantized() throws -> Tensor {
    let float = try produce { sk_dequantize_u8(values.handle, quantization.scale, Int64(quantization.zeroPoint), $0) }
    float.int8Source = self
    return float
  }

  /// The same values quantised with `target` (self when they already are).
  public func requantized(_ target: AffineQuantization) throws -> QuantizedActivation {
    target == quantization ? self : try QuantizedActivation(quantizing: dequantized(), target)
  }

  /// Max pooling, as `Tensor.maxPool2d` (dilation 1): it commutes with the increasing affine map.
  public func maxPool2d(kernel: Size2, stride: Size2? = nil, padding: Size2 = 0, ceilMode: Bool = false) throws -> QuantizedActivation {
    let pooled = try withPairs([kernel, stride ?? kernel, padding]) { p in
      try produce { sk_max_pool2d_u8(values.handle, quantization.scale, Int64(quantization.zeroPoint), p[0], p[1], p[2], ceilMode ? 1 : 0, $0) }
    }
    return QuantizedActivation(values: pooled, quantization: quantization)
  }
}
