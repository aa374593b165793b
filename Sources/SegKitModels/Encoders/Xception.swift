import SegKitNN

/// Xception-65, the aligned Xception of DeepLabv3+, as timm's `xception65`
/// (timm.models.xception_aligned) and under its keys (`stem.*`, `blocks.N.*`), so
/// timm's ImageNet checkpoint loads; its classifier (`head.*`) is dropped. Those
/// weights expect inputs normalised with mean 0.5 and std 0.5 (timm's config).
///
/// Entry flow: a two-convolution stem (stride 2) and three strided blocks (128,
/// 256, 728 channels); middle flow: 16 blocks of 728; exit flow: a strided block
/// (728, 1024, 1024) and an unstrided one without shortcut (1536, 1536, 2048).
///
/// Features (256, 728, 1024, 2048 channels) are timm's feature taps at strides 4,
/// 8, 16 and 32: in entry blocks 2 and 3 and the first exit block, the input of the
/// strided separable convolution (after its ReLU), which is where DeepLabv3+ reads
/// its low-level feature; then the last block's output.
///
/// Output stride 16 (or 8) as timm and DeepLab do: the exit (and third entry) block
/// keeps the previous dilation with stride 1, and every later block doubles it
/// (the middle flow at rate 2 for output stride 8, the last block at rate 2 or 4).
public final class Xception65: Module, Encoder {
  public let featureChannels = [256, 728, 1024, 2048]
  public let outputStride: Int
  public var featureStrides: [Int] { cappedFeatureStrides(outputStride: outputStride) }
  let stem: Sequential
  let blocks: [XceptionBlock]
  /// Blocks whose tap is a feature; the last feature is the final block's output.
  let tappedBlocks = [1, 2, 19]

  public init(outputStride: Int = 32, inputChannels: Int = 3) throws {
    guard [8, 16, 32].contains(outputStride) else {
      throw ModelError("Xception65: output stride must be 8, 16 or 32, got \(outputStride)")
    }
    self.outputStride = outputStride
    stem = Sequential(
      try BasicConv2d(inputChannels, 32, kernelSize: 3, stride: 2, padding: 1),
      try BasicConv2d(32, 64, kernelSize: 3, padding: 1))
    // (in, outs, stride)
    let specs: [(Int, [Int], Int)] =
      [(64, [128, 128, 128], 2), (128, [256, 256, 256], 2), (256, [728, 728, 728], 2)]
      + Array(repeating: (728, [728, 728, 728], 1), count: 16)
      + [(728, [728, 1024, 1024], 2), (1024, [1536, 1536, 2048], 1)]
    var stride = 2
    var dilation = 1
    var blocks: [XceptionBlock] = []
    for (index, (inChannels, outChannels, nominalStride)) in specs.enumerated() {
      var blockStride = nominalStride
      let blockDilation = dilation
      if nominalStride > 1 {
        if stride * nominalStride > outputStride {
          dilation *= nominalStride
          blockStride = 1
        } else {
          stride *= nominalStride
        }
      }
      let exit = index == specs.count - 1
      blocks.append(try XceptionBlock(
        inChannels, outChannels, stride: blockStride, dilation: blockDilation, startWithReLU: !exit, skip: !exit))
    }
    self.blocks = blocks
    super.init()
    registerModule("stem", stem)
    registerModule("blocks", Sequential(blocks))
  }

  public func features(_ x: Tensor) throws -> [Tensor] {
    var h = try stem(x)
    var features: [Tensor] = []
    for (index, block) in blocks.enumerated() {
      if tappedBlocks.contains(index) {
        let (output, tap) = try block.forwardWithTap(h)
        features.append(tap)
        h = output
      } else {
        h = try block(h)
      }
    }
    return features + [h]
  }

  public var inputConvolutionKey: String { "stem.0.conv.weight" }

  public func encoderKey(forClassificationKey key: String) -> String? {
    key.hasPrefix("head.") ? nil : key
  }
}

/// timm's SeparableConv2d: depthwise k×k convolution and batch norm, pointwise 1×1
/// convolution and batch norm, with a ReLU after each norm only when `activation`.
final class XceptionSeparableConv2d: Module, Layer, ConvBatchNormPairs, ActivationFusing {
  let depthwise: Conv2d
  let depthwiseNorm: BatchNorm2d
  let pointwise: Conv2d
  let pointwiseNorm: BatchNorm2d
  let activation: Bool

  init(_ inChannels: Int, _ outChannels: Int, stride: Int, dilation: Int, activation: Bool) throws {
    // timm's symmetric padding for a 3×3 kernel: ((stride − 1) + 2·dilation) / 2.
    depthwise = try Conv2d(
      inChannels, inChannels, kernelSize: 3, stride: Size2(stride), padding: Size2((stride - 1 + 2 * dilation) / 2),
      dilation: Size2(dilation), groups: inChannels, bias: false)
    depthwiseNorm = try BatchNorm2d(inChannels, eps: 0.001)
    pointwise = try Conv2d(inChannels, outChannels, kernelSize: 1, bias: false)
    pointwiseNorm = try BatchNorm2d(outChannels, eps: 0.001)
    self.activation = activation
    super.init()
    registerModule("conv_dw", depthwise)
    registerModule("bn_dw", depthwiseNorm)
    registerModule("conv_pw", pointwise)
    registerModule("bn_pw", pointwiseNorm)
  }

  var convBatchNormPairs: [(Conv2d, BatchNorm2d)] { [(depthwise, depthwiseNorm), (pointwise, pointwiseNorm)] }

  func fuseOwnActivations() -> Int {
    guard activation, depthwiseNorm.isFolded, pointwiseNorm.isFolded, depthwise.fusedActivation == nil else { return 0 }
    (depthwise.fusedActivation, pointwise.fusedActivation) = (.relu, .relu)
    return 2
  }

  func forward(_ x: Tensor) throws -> Tensor {
    // Fused convolutions apply the ReLUs themselves (the folded batch norms pass them on).
    let separateReLU = activation && (depthwise.fusedActivation == nil || isTraining)
    var h = try depthwiseNorm(depthwise(x))
    if separateReLU { h = try h.relu() }
    h = try pointwiseNorm(pointwise(h))
    return separateReLU ? try h.relu() : h
  }
}

/// timm's XceptionModule: three separable convolutions (`stack.conv1…3`, the last
/// one strided), each preceded by a ReLU when `startWithReLU` (else each ends with
/// its own ReLUs), plus the input, projected by a strided 1×1 `shortcut` when the
/// shape changes; `skip` false drops the residual.
final class XceptionBlock: Module, Layer {
  let convs: [XceptionSeparableConv2d]
  let shortcut: BasicConv2d?
  let startWithReLU: Bool
  let skip: Bool

  init(_ inChannels: Int, _ outChannels: [Int], stride: Int, dilation: Int, startWithReLU: Bool, skip: Bool) throws {
    var convs: [XceptionSeparableConv2d] = []
    var channels = inChannels
    for (index, width) in outChannels.enumerated() {
      convs.append(try XceptionSeparableConv2d(
        channels, width, stride: index == 2 ? stride : 1, dilation: dilation, activation: !startWithReLU))
      channels = width
    }
    self.convs = convs
    shortcut = skip && (channels != inChannels || stride != 1)
      ? try BasicConv2d(inChannels, channels, kernelSize: 1, stride: stride, relu: false) : nil
    self.startWithReLU = startWithReLU
    self.skip = skip
    super.init()
    if let shortcut { registerModule("shortcut", shortcut) }
    let stack = Module()
    for (index, conv) in convs.enumerated() { stack.registerModule("conv\(index + 1)", conv) }
    registerModule("stack", stack)
  }

  func forward(_ x: Tensor) throws -> Tensor { try forwardWithTap(x).output }

  /// The block's output and its feature tap: the input of the last (strided)
  /// separable convolution, after its ReLU.
  func forwardWithTap(_ x: Tensor) throws -> (output: Tensor, tap: Tensor) {
    var h = x
    var tap = x
    for (index, conv) in convs.enumerated() {
      if startWithReLU { h = try h.relu() }
      if index == convs.count - 1 { tap = h }
      h = try conv(h)
    }
    guard skip else { return (h, tap) }
    return (try h + (shortcut?.forward(x) ?? x), tap)
  }
}

extension Xception65: EncoderFamily {
  public static let names = ["xception65"]

  public static func make(_ name: String, outputStride: Int, inputChannels: Int) throws -> (any Encoder)? {
    guard names.contains(name) else { return nil }
    return try Xception65(outputStride: outputStride, inputChannels: inputChannels)
  }
}
