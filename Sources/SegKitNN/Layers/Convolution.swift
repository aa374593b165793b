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

  /// The int8 form of this convolution (folded weights included) used in evaluation
  /// mode on the CPU (see `quantizeConvolutions`).
  public internal(set) var int8: Int8Convolution?

  /// Set by `measureConvolutionKernels`: the kernel measured fastest for each input shape.
  var kernelChoice: KernelChoice?

  /// While calibrating: the ranges of the inputs and outputs seen, and the last input's shape.
  var calibration: Calibration?

  struct Calibration {
    var input: ClosedRange<Double>?
    var output: ClosedRange<Double>?
    var shape: [Int] = []

    static func widened(_ range: ClosedRange<Double>?, by x: Tensor) throws -> ClosedRange<Double> {
      let seen = try x.min().item()...x.max().item()
      return range.map { min($0.lowerBound, seen.lowerBound)...max($0.upperBound, seen.upperBound) } ?? seen
    }
  }

  /// The weight and bias inference uses: the folded ones when folded.
  var inferenceWeightAndBias: (weight: Tensor, bias: Tensor?) {
    folded.map { ($0.weight, Optional($0.bias)) } ?? (weight, bias)
  }

  private func runsInt8(_ x: Tensor) -> Int8Convolution? {
    guard let int8, !isTraining, x.device == .cpu, x.dtype == .float32, !Torch.isGradEnabled, !OperationTrace.isRecording
    else { return nil }
    return int8
  }

  private func observe(_ x: Tensor) throws {
    guard calibration != nil, !isTraining else { return }
    calibration!.input = try Calibration.widened(calibration!.input, by: x)
    calibration!.shape = x.shape
  }

  /// Records the range of the output (after the activation and any residual) while calibrating.
  private func observeOutput(_ y: Tensor) throws -> Tensor {
    if calibration != nil, !isTraining { calibration!.output = try Calibration.widened(calibration!.output, by: y) }
    return y
  }

  public func forward(_ x: Tensor) throws -> Tensor {
    try observe(x)
    let (w, b) = !isTraining && folded != nil ? (folded!.weight, folded!.bias) : (weight, bias)
    if let int8 = runsInt8(x) {
      let quantized = { try int8(x, then: self.fusedActivation) }
      let y = try kernel(for: x, direct: quantized) == .winograd ? try winograd(x, w, b) : try quantized()
      return ForwardTrace.note(self, x, y)
    }
    let input = try inWeightType(x, w)
    let direct = { try self.oneDNN(input, w, b) }
    let y = try kernel(for: input, direct: direct) == .winograd ? try winograd(input, w, b) : try direct()
    return ForwardTrace.note(self, x, try observeOutput(input === x ? y : try y.to(x.dtype)))
  }

  /// libtorch's convolution (oneDNN's on the CPU), the fused activation inside its kernel in evaluation mode.
  func oneDNN(_ x: Tensor, _ w: Tensor, _ b: Tensor?) throws -> Tensor {
    guard let fusedActivation, !isTraining else {
      return try x.conv2d(weight: w, bias: b, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
    return try x.conv2d(
      weight: w, bias: b, stride: stride, padding: padding, dilation: dilation, groups: groups, then: fusedActivation)
  }

  /// `x` in the weight's floating-point type: a reduced-precision model keeps some
  /// convolutions in float32 (`convertForInference`).
  private func inWeightType(_ x: Tensor, _ weight: Tensor) throws -> Tensor {
    x.dtype == weight.dtype || !x.dtype.isFloatingPoint ? x : try x.to(weight.dtype)
  }

  /// The convolution, plus `residual`, then `activation`: a residual block's last step,
  /// one oneDNN kernel in evaluation mode on the CPU.
  public func forward(_ x: Tensor, adding residual: Tensor, then activation: ConvolutionActivation) throws -> Tensor {
    guard !isTraining else { return try activation.apply(try forward(x) + residual) }
    try observe(x)
    if let int8 = runsInt8(x) { return ForwardTrace.note(self, x, try activation.apply(int8(x) + residual)) }
    let (w, b) = inferenceWeightAndBias
    let input = try inWeightType(x, w)
    let y = try input.conv2d(
      weight: w, bias: b, stride: stride, padding: padding, dilation: dilation, groups: groups,
      adding: try inWeightType(residual, w), then: activation)
    return ForwardTrace.note(self, x, try observeOutput(input === x ? y : try y.to(x.dtype)))
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

  /// In evaluation mode, the diagonal of a weight that maps each channel only onto
  /// itself (bilinear upsampling as FCN and OSVOS build it), run as a depthwise
  /// transposed convolution: the same sums without the zero terms (see
  /// `useDepthwiseDiagonals`).
  var depthwiseDiagonal: Tensor?

  private func convolve(_ x: Tensor, outputPadding: Size2) throws -> Tensor {
    let (weight, groups) = !isTraining && depthwiseDiagonal != nil ? (depthwiseDiagonal!, inChannels) : (weight, groups)
    // A reduced-precision model keeps this layer in float32 (`convertForInference`).
    let input = x.dtype == weight.dtype || !x.dtype.isFloatingPoint ? x : try x.to(weight.dtype)
    let y = try input.convTranspose2d(
      weight: weight, bias: bias, stride: stride, padding: padding, outputPadding: outputPadding, groups: groups,
      dilation: dilation)
    return ForwardTrace.note(self, x, input === x ? y : try y.to(x.dtype))
  }

  /// The diagonal [C, 1, kh, kw] when every weight off it is zero, else nil.
  func diagonalOnly() throws -> Tensor? {
    guard groups == 1, inChannels == outChannels, inChannels > 1 else { return nil }
    return try Torch.withNoGrad {
      let w = try weight.detach()
      let channel = try Tensor.arange(Double(inChannels), device: w.device)
      let eye = try (channel.reshape([-1, 1, 1, 1]) .== channel.reshape([1, -1, 1, 1])).to(w.dtype)
      let diagonal = try (w * eye).sum(dims: [1], keepDim: true)
      let offDiagonal = try w - diagonal * eye
      guard try offDiagonal.abs().max().item() == 0 else { return nil }
      return diagonal
    }
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
