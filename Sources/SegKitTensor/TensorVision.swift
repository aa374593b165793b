import CTorchShim

/// A (height, width) pair; a single integer means the same value for both.
public struct Size2: Equatable, Hashable, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral, CustomStringConvertible, Sendable {
  public var height: Int
  public var width: Int

  public init(_ height: Int, _ width: Int) {
    self.height = height
    self.width = width
  }

  public init(_ both: Int) { self.init(both, both) }
  public init(integerLiteral value: Int) { self.init(value) }
  public init(arrayLiteral elements: Int...) {
    precondition(elements.count == 2, "Size2 literal needs exactly two values, got \(elements)")
    self.init(elements[0], elements[1])
  }

  var int64s: [Int64] { [Int64(height), Int64(width)] }
  public var description: String { "\(height)×\(width)" }
}

/// Resampling kernels, as F.interpolate's and F.grid_sample's `mode`.
public enum Interpolation: Sendable {
  case nearest, bilinear, bicubic, nearestExact

  var code: sk_interp_mode {
    switch self {
    case .nearest: return SK_NEAREST
    case .bilinear: return SK_BILINEAR
    case .bicubic: return SK_BICUBIC
    case .nearestExact: return SK_NEAREST_EXACT
    }
  }
}

/// What grid_sample reads outside the input.
public enum GridPadding: Sendable {
  case zeros, border, reflection

  var code: sk_grid_padding {
    switch self {
    case .zeros: return SK_PAD_ZEROS
    case .border: return SK_PAD_BORDER
    case .reflection: return SK_PAD_REFLECTION
    }
  }
}

public enum PadMode: Sendable {
  case constant, reflect, replicate, circular

  var code: sk_pad_mode {
    switch self {
    case .constant: return SK_PAD_CONSTANT
    case .reflect: return SK_PAD_REFLECT
    case .replicate: return SK_PAD_REPLICATE
    case .circular: return SK_PAD_CIRCULAR
    }
  }
}

@inline(__always)
func withPairs<R>(_ pairs: [Size2], _ body: ([UnsafePointer<Int64>]) throws -> R) rethrows -> R {
  // One flat buffer keeps every pair alive for the duration of the call.
  let flat = pairs.flatMap { $0.int64s }
  return try flat.withUnsafeBufferPointer { buffer in
    try body((0..<pairs.count).map { buffer.baseAddress! + 2 * $0 })
  }
}

/// The operations of segmentation networks, on (N, C, H, W) tensors, as in torch.nn.functional.
extension Tensor {
  public func conv2d(
    weight: Tensor, bias: Tensor? = nil, stride: Size2 = 1, padding: Size2 = 0, dilation: Size2 = 1, groups: Int = 1
  ) throws -> Tensor {
    try withPairs([stride, padding, dilation]) { p in
      try produce { sk_conv2d(handle, weight.handle, bias?.handle, p[0], p[1], p[2], Int64(groups), $0) }
    }.traced(.conv2d(stride: stride, padding: padding, dilation: dilation, groups: groups), [self, weight, bias])
  }

  /// conv2d, then `+ residual` where given, then `activation`: on the CPU in float32
  /// or bfloat16 and without autograd, one oneDNN kernel (no passes over the output);
  /// elsewhere, and while an export records, the separate operations.
  public func conv2d(
    weight: Tensor, bias: Tensor?, stride: Size2, padding: Size2, dilation: Size2, groups: Int,
    adding residual: Tensor? = nil, then activation: ConvolutionActivation?
  ) throws -> Tensor {
    let fusable = device == .cpu && (dtype == .float32 || dtype == .bfloat16) && rank == 4 && !Torch.isGradEnabled
      && !OperationTrace.isRecording && (residual == nil || activation == nil || activation == .relu)
    guard fusable else {
      var y = try conv2d(weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
      if let residual { y = try y + residual }
      return try activation?.apply(y) ?? y
    }
    let (name, scalars) = activation?.onednn ?? ("none", [])
    return try withPairs([stride, padding, dilation]) { p in
      try produce { out in
        scalars.withUnsafeBufferPointer { values in
          sk_conv2d_fused(handle, weight.handle, bias?.handle, p[0], p[1], p[2], Int64(groups), name, values.baseAddress,
                          Int32(values.count), residual?.handle, out)
        }
      }
    }
  }

  /// NNPACK's convolution (CPU, float32, stride 1, ungrouped, no dilation), then
  /// `activation`: for 3×3 kernels Winograd's F(6×6, 3×3), about a fifth of a direct
  /// convolution's multiplications, rounded less exactly (its outputs differ from a direct
  /// one's in about the fifth significant digit). Reads the contiguous layout (copying
  /// other layouts) and returns it.
  public func nnpackConv2d(weight: Tensor, bias: Tensor?, padding: Size2, then activation: ConvolutionActivation?) throws -> Tensor {
    guard device == .cpu, dtype == .float32, weight.dtype == .float32, rank == 4 else {
      throw TorchError("nnpackConv2d: a 4-D float32 CPU input is needed, got \(dtype) \(shape) on \(device)")
    }
    let (name, scalars) = activation?.onednn ?? ("none", [])
    return try withPairs([padding]) { p in
      try produce { out in
        scalars.withUnsafeBufferPointer { values in
          sk_nnpack_conv2d(handle, weight.handle, bias?.handle, p[0], name, values.baseAddress, Int32(values.count), out)
        }
      }
    }
  }

  public func convTranspose2d(
    weight: Tensor, bias: Tensor? = nil, stride: Size2 = 1, padding: Size2 = 0, outputPadding: Size2 = 0,
    groups: Int = 1, dilation: Size2 = 1
  ) throws -> Tensor {
    try withPairs([stride, padding, outputPadding, dilation]) { p in
      try produce {
        sk_conv_transpose2d(handle, weight.handle, bias?.handle, p[0], p[1], p[2], Int64(groups), p[3], $0)
      }
    }.traced(.convTranspose2d(stride: stride, padding: padding, outputPadding: outputPadding, dilation: dilation, groups: groups),
             [self, weight, bias])
  }

  /// Max pooling; `stride` defaults to the kernel size, as in PyTorch.
  public func maxPool2d(
    kernel: Size2, stride: Size2? = nil, padding: Size2 = 0, dilation: Size2 = 1, ceilMode: Bool = false
  ) throws -> Tensor {
    try withPairs([kernel, stride ?? kernel, padding, dilation]) { p in
      try produce { sk_max_pool2d(handle, p[0], p[1], p[2], p[3], ceilMode ? 1 : 0, $0, nil) }
    }.traced(.maxPool2d(kernel: kernel, stride: stride ?? kernel, padding: padding, dilation: dilation, ceilMode: ceilMode), [self])
  }

  /// Max pooling that also returns the flat per-plane argmax positions, for `maxUnpool2d`.
  public func maxPool2dWithIndices(
    kernel: Size2, stride: Size2? = nil, padding: Size2 = 0, dilation: Size2 = 1, ceilMode: Bool = false
  ) throws -> (output: Tensor, indices: Tensor) {
    let r = try withPairs([kernel, stride ?? kernel, padding, dilation]) { p in
      try produce2 { sk_max_pool2d(handle, p[0], p[1], p[2], p[3], ceilMode ? 1 : 0, $0, $1) }
    }
    return (r.0, r.1)
  }

  public func maxUnpool2d(indices: Tensor, outputSize: Size2) throws -> Tensor {
    try withPairs([outputSize]) { p in try produce { sk_max_unpool2d(handle, indices.handle, p[0], $0) } }
  }

  public func avgPool2d(
    kernel: Size2, stride: Size2? = nil, padding: Size2 = 0, ceilMode: Bool = false, countIncludePad: Bool = true,
    divisorOverride: Int? = nil
  ) throws -> Tensor {
    try withPairs([kernel, stride ?? kernel, padding]) { p in
      try produce {
        sk_avg_pool2d(handle, p[0], p[1], p[2], ceilMode ? 1 : 0, countIncludePad ? 1 : 0, Int64(divisorOverride ?? 0), $0)
      }
    }.traced(divisorOverride == nil
               ? .avgPool2d(kernel: kernel, stride: stride ?? kernel, padding: padding, ceilMode: ceilMode, countIncludePad: countIncludePad)
               : nil, [self])
  }

  public func adaptiveAvgPool2d(_ outputSize: Size2) throws -> Tensor {
    try withPairs([outputSize]) { p in try produce { sk_adaptive_avg_pool2d(handle, p[0], $0) } }.traced(.adaptiveAvgPool2d(outputSize), [self])
  }

  public func adaptiveMaxPool2d(_ outputSize: Size2) throws -> Tensor {
    try withPairs([outputSize]) { p in try produce { sk_adaptive_max_pool2d(handle, p[0], $0) } }
  }

  /// Batch normalisation. In training mode batch statistics are used and the
  /// running statistics, when given, are updated in place with `momentum`.
  public func batchNorm(
    weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?, training: Bool,
    momentum: Double = 0.1, eps: Double = 1e-5
  ) throws -> Tensor {
    let result = try produce {
      sk_batch_norm(handle, weight?.handle, bias?.handle, runningMean?.handle, runningVar?.handle, training ? 1 : 0,
                    momentum, eps, $0)
    }
    guard !training, let runningMean, let runningVar else { return result }
    return OperationTrace.note(.batchNorm(eps: eps, hasWeight: weight != nil, hasBias: bias != nil),
                               [self, weight, bias, runningMean, runningVar], result)
  }

  public func groupNorm(groups: Int, weight: Tensor? = nil, bias: Tensor? = nil, eps: Double = 1e-5) throws -> Tensor {
    try produce { sk_group_norm(handle, Int64(groups), weight?.handle, bias?.handle, eps, $0) }
  }

  /// Zeroes elements with probability `p` and scales the rest by 1/(1-p) when training.
  public func dropout(p: Double = 0.5, training: Bool = true) throws -> Tensor {
    let result = try produce { sk_dropout(handle, p, training ? 1 : 0, 0, $0) }
    return training && p > 0 ? result : OperationTrace.note(.identity, [self], result)
  }

  /// Zeroes whole channels, as nn.Dropout2d.
  public func dropout2d(p: Double = 0.5, training: Bool = true) throws -> Tensor {
    try produce { sk_dropout(handle, p, training ? 1 : 0, 1, $0) }
  }

  /// Resamples to `size`, as F.interpolate(size=...).
  public func interpolate(size: Size2, mode: Interpolation = .bilinear, alignCorners: Bool = false) throws -> Tensor {
    try resample(size: size, scales: [0, 0], mode: mode, alignCorners: alignCorners)
      .traced(.interpolate(size: size, mode: mode, alignCorners: alignCorners), [self])
  }

  /// Resamples by `scaleFactor`, as F.interpolate(scale_factor=...): the output
  /// is floor(input × factor) and the factor itself maps coordinates.
  public func interpolate(scaleFactor: Double, mode: Interpolation = .bilinear, alignCorners: Bool = false) throws -> Tensor {
    let s = shape
    guard s.count == 4 else { throw TorchError("interpolate expects a 4-D (N, C, H, W) tensor, got shape \(s)") }
    let size = Size2(Int((Double(s[2]) * scaleFactor).rounded(.down)), Int((Double(s[3]) * scaleFactor).rounded(.down)))
    let result = try resample(size: size, scales: [scaleFactor, scaleFactor], mode: mode, alignCorners: alignCorners)
    // When the factor gives the size exactly, the coordinates are those of a resize to that size.
    let exact = Double(size.height) == Double(s[2]) * scaleFactor && Double(size.width) == Double(s[3]) * scaleFactor
    return exact ? result.traced(.interpolate(size: size, mode: mode, alignCorners: alignCorners), [self]) : result
  }

  private func resample(size: Size2, scales: [Double], mode: Interpolation, alignCorners: Bool) throws -> Tensor {
    let useCorners = (mode == .bilinear || mode == .bicubic) && alignCorners
    return try withPairs([size]) { p in
      try scales.withUnsafeBufferPointer { sc in
        try produce { sk_interpolate(handle, mode.code, p[0], sc.baseAddress, useCorners ? 1 : 0, $0) }
      }
    }
  }

  /// Samples the input at `grid` locations ((N, H, W, 2), x then y in [-1, 1]), as F.grid_sample.
  public func gridSample(
    grid: Tensor, mode: Interpolation = .bilinear, padding: GridPadding = .zeros, alignCorners: Bool = false
  ) throws -> Tensor {
    try produce { sk_grid_sample(handle, grid.handle, mode.code, padding.code, alignCorners ? 1 : 0, $0) }
  }

  /// Pads as F.pad: `pads` are (left, right, top, bottom, …) from the last dimension backwards.
  public func pad(_ pads: [Int], mode: PadMode = .constant, value: Double = 0) throws -> Tensor {
    try withInt64s(pads) { p, n in try produce { sk_pad(handle, p, n, mode.code, value, $0) } }.traced(.pad(pads, mode: mode, value: value), [self])
  }
}

/// An activation a convolution can apply to its own output (`conv2d(…, then:)`).
public enum ConvolutionActivation: Sendable, Equatable {
  case relu, relu6, hardswish, sigmoid
  case leakyReLU(slope: Double)

  /// oneDNN's name for it and its settings.
  var onednn: (String, [Double]) {
    switch self {
    case .relu: return ("relu", [])
    case .relu6: return ("hardtanh", [0, 6])
    case .hardswish: return ("hardswish", [])
    case .sigmoid: return ("sigmoid", [])
    case .leakyReLU(let slope): return ("leaky_relu", [slope])
    }
  }

  /// The activation as its own operation.
  public func apply(_ x: Tensor) throws -> Tensor {
    switch self {
    case .relu: return try x.relu()
    case .relu6: return try x.relu6()
    case .hardswish: return try x.hardswish()
    case .sigmoid: return try x.sigmoid()
    case .leakyReLU(let slope): return try x.leakyReLU(slope: slope)
    }
  }
}
