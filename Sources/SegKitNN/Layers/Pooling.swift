/// Max pooling, as nn.MaxPool2d; `stride` defaults to the kernel size.
public final class MaxPool2d: Module, Layer {
  public let kernelSize: Size2
  public let stride: Size2
  public let padding: Size2
  public let dilation: Size2
  public let ceilMode: Bool

  public init(kernelSize: Size2, stride: Size2? = nil, padding: Size2 = 0, dilation: Size2 = 1, ceilMode: Bool = false) {
    self.kernelSize = kernelSize
    self.stride = stride ?? kernelSize
    self.padding = padding
    self.dilation = dilation
    self.ceilMode = ceilMode
  }

  public func forward(_ x: Tensor) throws -> Tensor {
    try x.maxPool2d(kernel: kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode)
  }

  /// The pooled values and the flat per-plane positions of the maxima, for `MaxUnpool2d`
  /// (torch's return_indices=True).
  public func forwardWithIndices(_ x: Tensor) throws -> (output: Tensor, indices: Tensor) {
    try x.maxPool2dWithIndices(kernel: kernelSize, stride: stride, padding: padding, dilation: dilation, ceilMode: ceilMode)
  }
}

/// Puts pooled values back where `MaxPool2d.forwardWithIndices` found them, zeros elsewhere.
public final class MaxUnpool2d: Module {
  public let kernelSize: Size2
  public let stride: Size2
  public let padding: Size2

  public init(kernelSize: Size2, stride: Size2? = nil, padding: Size2 = 0) {
    self.kernelSize = kernelSize
    self.stride = stride ?? kernelSize
    self.padding = padding
  }

  /// `outputSize` defaults to (in − 1)·stride − 2·padding + kernel, the size before pooling
  /// without ceil mode; pass the original size when pooling rounded.
  public func forward(_ x: Tensor, indices: Tensor, outputSize: Size2? = nil) throws -> Tensor {
    let shape = x.shape
    guard shape.count == 4 else { throw NNError("MaxUnpool2d expects (N, C, H, W) input, got shape \(shape)") }
    let size = outputSize ?? Size2(
      (shape[2] - 1) * stride.height - 2 * padding.height + kernelSize.height,
      (shape[3] - 1) * stride.width - 2 * padding.width + kernelSize.width)
    return try x.maxUnpool2d(indices: indices, outputSize: size)
  }

  public func callAsFunction(_ x: Tensor, indices: Tensor, outputSize: Size2? = nil) throws -> Tensor {
    try forward(x, indices: indices, outputSize: outputSize)
  }
}

/// Average pooling, as nn.AvgPool2d; `stride` defaults to the kernel size.
public final class AvgPool2d: Module, Layer {
  public let kernelSize: Size2
  public let stride: Size2
  public let padding: Size2
  public let ceilMode: Bool
  public let countIncludePad: Bool
  public let divisorOverride: Int?

  public init(
    kernelSize: Size2, stride: Size2? = nil, padding: Size2 = 0, ceilMode: Bool = false, countIncludePad: Bool = true,
    divisorOverride: Int? = nil
  ) {
    self.kernelSize = kernelSize
    self.stride = stride ?? kernelSize
    self.padding = padding
    self.ceilMode = ceilMode
    self.countIncludePad = countIncludePad
    self.divisorOverride = divisorOverride
  }

  public func forward(_ x: Tensor) throws -> Tensor {
    try x.avgPool2d(
      kernel: kernelSize, stride: stride, padding: padding, ceilMode: ceilMode, countIncludePad: countIncludePad,
      divisorOverride: divisorOverride)
  }
}

/// Average pooling to a fixed output size, as nn.AdaptiveAvgPool2d.
public final class AdaptiveAvgPool2d: Module, Layer {
  public let outputSize: Size2

  public init(_ outputSize: Size2) { self.outputSize = outputSize }

  public func forward(_ x: Tensor) throws -> Tensor { try x.adaptiveAvgPool2d(outputSize) }
}
