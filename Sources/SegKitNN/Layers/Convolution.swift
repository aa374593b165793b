import Foundation

/// torch's default for convolutions and linear layers: weight from kaiming_uniform
/// with a = √5 (U(±1/√fan_in)), bias from U(±1/√fan_in).
func resetAffine(weight: Tensor, bias: Tensor?) throws {
  try Init.kaimingUniform_(weight, a: 5.0.squareRoot())
  guard let bias else { return }
  let fanIn = try Init.fans(weight).fanIn
  let bound = fanIn > 0 ? 1 / Double(fanIn).squareRoot() : 0
  try Init.uniform_(bias, from: -bound, to: bound)
}

/// 2-D convolution, as nn.Conv2d: weight (out, in/groups, kh, kw), optional bias (out).
public final class Conv2d: Module, Layer {
  public let inChannels: Int
  public let outChannels: Int
  public let kernelSize: Size2
  public let stride: Size2
  public let padding: Size2
  public let dilation: Size2
  public let groups: Int

  public var weight: Tensor { parameter("weight")! }
  public var bias: Tensor? { parameter("bias") }

  public init(
    _ inChannels: Int, _ outChannels: Int, kernelSize: Size2, stride: Size2 = 1, padding: Size2 = 0,
    dilation: Size2 = 1, groups: Int = 1, bias: Bool = true
  ) throws {
    guard groups > 0, inChannels % groups == 0, outChannels % groups == 0 else {
      throw NNError("Conv2d: \(inChannels) in and \(outChannels) out channels must both be divisible by groups (\(groups))")
    }
    self.inChannels = inChannels
    self.outChannels = outChannels
    self.kernelSize = kernelSize
    self.stride = stride
    self.padding = padding
    self.dilation = dilation
    self.groups = groups
    super.init()
    let weight = try registerParameter(
      "weight", Tensor.empty([outChannels, inChannels / groups, kernelSize.height, kernelSize.width]))
    let bias = bias ? try registerParameter("bias", Tensor.empty([outChannels])) : nil
    try resetAffine(weight: weight, bias: bias)
  }

  /// Weight and bias with the following batch norm folded in (see `foldBatchNorm`),
  /// used instead of the registered ones in evaluation mode.
  var folded: (weight: Tensor, bias: Tensor)?

  /// The activation this convolution applies to its output in evaluation mode, in
  /// place of the activation layer after it (see `fuseActivations`).
  public var fusedActivation: ConvolutionActivation?

  public func forward(_ x: Tensor) throws -> Tensor {
    let (w, b) = !isTraining && folded != nil ? (folded!.weight, folded!.bias) : (weight, bias)
    if let fusedActivation, !isTraining {
      return ForwardTrace.note(self, x, try x.conv2d(
        weight: w, bias: b, stride: stride, padding: padding, dilation: dilation, groups: groups, then: fusedActivation))
    }
    return ForwardTrace.note(
      self, x, try x.conv2d(weight: w, bias: b, stride: stride, padding: padding, dilation: dilation, groups: groups))
  }

  /// The convolution, plus `residual`, then `activation`: a residual block's last step,
  /// one oneDNN kernel in evaluation mode on the CPU.
  public func forward(_ x: Tensor, adding residual: Tensor, then activation: ConvolutionActivation) throws -> Tensor {
    guard !isTraining else { return try activation.apply(try forward(x) + residual) }
    let (w, b) = folded.map { ($0.weight, Optional($0.bias)) } ?? (weight, bias)
    return ForwardTrace.note(self, x, try x.conv2d(
      weight: w, bias: b, stride: stride, padding: padding, dilation: dilation, groups: groups, adding: residual,
      then: activation))
  }
}

/// Transposed 2-D convolution, as nn.ConvTranspose2d: weight (in, out/groups, kh, kw).
public final class ConvTranspose2d: Module, Layer {
  public let inChannels: Int
  public let outChannels: Int
  public let kernelSize: Size2
  public let stride: Size2
  public let padding: Size2
  public let outputPadding: Size2
  public let groups: Int
  public let dilation: Size2

  public var weight: Tensor { parameter("weight")! }
  public var bias: Tensor? { parameter("bias") }

  public init(
    _ inChannels: Int, _ outChannels: Int, kernelSize: Size2, stride: Size2 = 1, padding: Size2 = 0,
    outputPadding: Size2 = 0, groups: Int = 1, bias: Bool = true, dilation: Size2 = 1
  ) throws {
    guard groups > 0, inChannels % groups == 0, outChannels % groups == 0 else {
      throw NNError(
        "ConvTranspose2d: \(inChannels) in and \(outChannels) out channels must both be divisible by groups (\(groups))")
    }
    self.inChannels = inChannels
    self.outChannels = outChannels
    self.kernelSize = kernelSize
    self.stride = stride
    self.padding = padding
    self.outputPadding = outputPadding
    self.groups = groups
    self.dilation = dilation
    super.init()
    let weight = try registerParameter(
      "weight", Tensor.empty([inChannels, outChannels / groups, kernelSize.height, kernelSize.width]))
    let bias = bias ? try registerParameter("bias", Tensor.empty([outChannels])) : nil
    try resetAffine(weight: weight, bias: bias)
  }

  public func forward(_ x: Tensor) throws -> Tensor {
    try convolve(x, outputPadding: outputPadding)
  }

  /// Resolves the stride ambiguity by asking for an exact spatial output size, as
  /// forward(input, output_size) in torch.
  public func forward(_ x: Tensor, outputSize: Size2) throws -> Tensor {
    let shape = x.shape
    guard shape.count == 4 else { throw NNError("ConvTranspose2d expects (N, C, H, W) input, got shape \(shape)") }
    func extra(_ input: Int, _ wanted: Int, _ stride: Int, _ padding: Int, _ dilation: Int, _ kernel: Int) throws -> Int {
      let smallest = (input - 1) * stride - 2 * padding + dilation * (kernel - 1) + 1
      guard wanted >= smallest, wanted < smallest + stride else {
        throw NNError("ConvTranspose2d: requested output size \(outputSize) is not reachable from input \(shape)")
      }
      return wanted - smallest
    }
    let padding = Size2(
      try extra(shape[2], outputSize.height, stride.height, self.padding.height, dilation.height, kernelSize.height),
      try extra(shape[3], outputSize.width, stride.width, self.padding.width, dilation.width, kernelSize.width))
    return try convolve(x, outputPadding: padding)
  }

  private func convolve(_ x: Tensor, outputPadding: Size2) throws -> Tensor {
    ForwardTrace.note(self, x, try x.convTranspose2d(
      weight: weight, bias: bias, stride: stride, padding: padding, outputPadding: outputPadding, groups: groups,
      dilation: dilation))
  }
}

/// A depthwise k×k convolution (one filter per input channel, no bias) followed by a
/// pointwise 1×1 convolution, with children "depthwise" and "pointwise" as in DeepLab's
/// separable convolutions (torchvision has no such layer; DeepLab's checkpoints name the
/// two halves this way). Padding defaults to dilation·(k−1)/2, keeping the size at stride 1.
public final class DepthwiseSeparableConv2d: Module, Layer {
  public let depthwise: Conv2d
  public let pointwise: Conv2d

  public init(
    _ inChannels: Int, _ outChannels: Int, kernelSize: Size2 = 3, stride: Size2 = 1, padding: Size2? = nil,
    dilation: Size2 = 1, bias: Bool = true
  ) throws {
    let samePadding = Size2(
      dilation.height * (kernelSize.height - 1) / 2, dilation.width * (kernelSize.width - 1) / 2)
    depthwise = try Conv2d(
      inChannels, inChannels, kernelSize: kernelSize, stride: stride, padding: padding ?? samePadding,
      dilation: dilation, groups: inChannels, bias: false)
    pointwise = try Conv2d(inChannels, outChannels, kernelSize: 1, bias: bias)
    super.init()
    registerModule("depthwise", depthwise)
    registerModule("pointwise", pointwise)
  }

  public func forward(_ x: Tensor) throws -> Tensor {
    try pointwise(depthwise(x))
  }
}
