import SegKitNN

/// torchvision's ResNet without its classifier (avgpool, fc), as a feature
/// extractor. `replaceStrideWithDilation` keeps layer2–4 at a finer stride the
/// way torchvision does: the first block of a dilated stage keeps the previous
/// dilation, the later blocks use the new one.
public final class ResNet: Module, Encoder, ConvBatchNormPairs {
  public enum Block { case basic, bottleneck }

  public let featureChannels: [Int]
  public let outputStride: Int
  public var featureStrides: [Int] { cappedFeatureStrides(outputStride: outputStride) }
  let stem: [any Layer]
  let stages: [Sequential]

  /// - Parameters:
  ///   - layers: blocks per stage, e.g. [3, 4, 6, 3] for ResNet-50.
  ///   - outputStride: 32, 16 (layer4 dilated) or 8 (layer3 and layer4 dilated).
  ///   - inputChannels: 3 for RGB; more for extra inputs such as a previous mask.
  public init(block: Block, layers: [Int], outputStride: Int = 32, inputChannels: Int = 3) throws {
    let dilate: [Bool]
    switch outputStride {
    case 32: dilate = [false, false, false]
    case 16: dilate = [false, false, true]
    case 8: dilate = [false, true, true]
    default: throw ModelError("ResNet: output stride must be 8, 16 or 32, got \(outputStride)")
    }
    guard layers.count == 4, layers.allSatisfy({ $0 > 0 }) else {
      throw ModelError("ResNet: expected 4 positive block counts, got \(layers)")
    }
    let expansion = block == .basic ? 1 : 4
    self.outputStride = outputStride
    featureChannels = [64, 128, 256, 512].map { $0 * expansion }

    let conv1 = try Conv2d(inputChannels, 64, kernelSize: 7, stride: 2, padding: 3, bias: false)
    let bn1 = try BatchNorm2d(64)
    stem = [conv1, bn1, ReLU(), MaxPool2d(kernelSize: 3, stride: 2, padding: 1)]

    var inPlanes = 64
    var dilation = 1
    var stages: [Sequential] = []
    for (index, planes) in [64, 128, 256, 512].enumerated() {
      var stride = index == 0 ? 1 : 2
      let previousDilation = dilation
      if index > 0 && dilate[index - 1] {
        dilation *= stride
        stride = 1
      }
      var blocks: [any Layer] = []
      for b in 0..<layers[index] {
        let first = b == 0
        blocks.append(try ResidualBlock(
          block, inPlanes: first ? inPlanes : planes * expansion, planes: planes, stride: first ? stride : 1,
          dilation: first ? previousDilation : dilation))
      }
      inPlanes = planes * expansion
      stages.append(Sequential(blocks))
    }
    self.stages = stages
    super.init()
    registerModule("conv1", conv1)
    registerModule("bn1", bn1)
    for (index, stage) in stages.enumerated() { registerModule("layer\(index + 1)", stage) }
  }

  public func features(_ x: Tensor) throws -> [Tensor] {
    if let int8 = int8Path(for: x) { return try int8.features(x) }
    var h = try stem.reduce(x) { try $1.forward($0) }
    return try stages.map { stage in
      h = try stage.forward(h)
      return h
    }
  }

  /// Whether `features(x)` keeps int8 activations from the stem to each stage's end.
  public func keepsInt8Activations(for x: Tensor) -> Bool { int8Path(for: x) != nil }

  /// The stem and every block in int8 with int8 activations between them, when the
  /// convolutions were quantised (`quantizeConvolutions`) and calibration saw their
  /// outputs: `x` is quantised once, and each stage's output dequantised once.
  private func int8Path(for x: Tensor) -> Int8ResNet? {
    guard let stem = Int8Chain(stem, for: x) else { return nil }
    var blocks: [[Int8ResidualBlock]] = []
    for stage in stages {
      let stageBlocks = stage.layers.compactMap { ($0 as? ResidualBlock)?.int8Form }
      guard stageBlocks.count == stage.layers.count else { return nil }
      blocks.append(stageBlocks)
    }
    return Int8ResNet(stem: stem, stages: blocks)
  }

  public var featureLevels: [FeatureLevel] {
    zip(featureChannels, featureStrides).enumerated().map {
      FeatureLevel("layer\($0 + 1)", channels: $1.0, stride: $1.1)
    }
  }

  public var inputConvolutionKey: String { "conv1.weight" }

  public var convBatchNormPairs: [(Conv2d, BatchNorm2d)] { [(stem[0] as! Conv2d, stem[1] as! BatchNorm2d)] }

  public func encoderKey(forClassificationKey key: String) -> String? {
    key.hasPrefix("fc.") ? nil : key
  }

  /// torchvision's depths by name: resnet18, resnet34, resnet50, resnet101.
  public convenience init(depth: Int, outputStride: Int = 32, inputChannels: Int = 3) throws {
    switch depth {
    case 18: try self.init(block: .basic, layers: [2, 2, 2, 2], outputStride: outputStride, inputChannels: inputChannels)
    case 34: try self.init(block: .basic, layers: [3, 4, 6, 3], outputStride: outputStride, inputChannels: inputChannels)
    case 50: try self.init(block: .bottleneck, layers: [3, 4, 6, 3], outputStride: outputStride, inputChannels: inputChannels)
    case 101: try self.init(block: .bottleneck, layers: [3, 4, 23, 3], outputStride: outputStride, inputChannels: inputChannels)
    default: throw ModelError("ResNet: unsupported depth \(depth) (18, 34, 50 or 101)")
    }
  }
}

/// BasicBlock (two 3×3 convs) or Bottleneck (1×1, 3×3, 1×1 with 4× expansion),
/// with a 1×1 projection ("downsample") when the shape changes.
final class ResidualBlock: Module, Layer, ConvBatchNormPairs, ActivationFusing {
  let convs: [(Conv2d, BatchNorm2d)]
  let downsample: Sequential?

  init(_ block: ResNet.Block, inPlanes: Int, planes: Int, stride: Int, dilation: Int) throws {
    let expansion = block == .basic ? 1 : 4
    let out = planes * expansion
    switch block {
    case .basic:
      convs = [
        (try Conv2d(inPlanes, planes, kernelSize: 3, stride: Size2(stride), padding: Size2(dilation),
                    dilation: Size2(dilation), bias: false), try BatchNorm2d(planes)),
        (try Conv2d(planes, planes, kernelSize: 3, padding: Size2(dilation), dilation: Size2(dilation), bias: false),
         try BatchNorm2d(planes)),
      ]
    case .bottleneck:
      convs = [
        (try Conv2d(inPlanes, planes, kernelSize: 1, bias: false), try BatchNorm2d(planes)),
        (try Conv2d(planes, planes, kernelSize: 3, stride: Size2(stride), padding: Size2(dilation),
                    dilation: Size2(dilation), bias: false), try BatchNorm2d(planes)),
        (try Conv2d(planes, out, kernelSize: 1, bias: false), try BatchNorm2d(out)),
      ]
    }
    downsample = stride != 1 || inPlanes != out
      ? Sequential(try Conv2d(inPlanes, out, kernelSize: 1, stride: Size2(stride), bias: false), try BatchNorm2d(out))
      : nil
    super.init()
    for (index, (conv, norm)) in convs.enumerated() {
      registerModule("conv\(index + 1)", conv)
      registerModule("bn\(index + 1)", norm)
    }
    if let downsample { registerModule("downsample", downsample) }
  }

  var convBatchNormPairs: [(Conv2d, BatchNorm2d)] { convs }

  /// After folding: the convolutions apply the ReLUs, the last one the addition of
  /// the identity and the ReLU after it.
  func fuseOwnActivations() -> Int {
    guard !isFused, convs.allSatisfy({ $0.1.isFolded }) else { return 0 }
    for (conv, _) in convs.dropLast() { conv.fusedActivation = .relu }
    return convs.count
  }

  private var isFused: Bool { convs.dropLast().allSatisfy { $0.0.fusedActivation == .relu } }

  /// The block's convolutions in int8, when all were quantised and calibration saw their outputs.
  var int8Form: Int8ResidualBlock? {
    guard !isTraining, isFused, convs.allSatisfy({ $0.1.isFolded }) else { return nil }
    let quantized = convs.compactMap { conv, _ in conv.int8.flatMap { $0.output == nil ? nil : $0 } }
    guard quantized.count == convs.count else { return nil }
    guard let downsample else { return Int8ResidualBlock(convs: quantized, downsample: nil) }
    guard let conv = downsample.layers.first as? Conv2d, conv.fusedActivation == nil, let projection = conv.int8,
          projection.output != nil, (downsample.layers.last as? BatchNorm2d)?.isFolded == true
    else { return nil }
    return Int8ResidualBlock(convs: quantized, downsample: projection)
  }

  func forward(_ x: Tensor) throws -> Tensor {
    if !isTraining && isFused && convs.allSatisfy({ $0.1.isFolded }) {
      var h = x
      for (conv, _) in convs.dropLast() { h = try conv.forward(h) }
      return try convs.last!.0.forward(h, adding: try downsample?.forward(x) ?? x, then: .relu)
    }
    var h = x
    for (index, (conv, norm)) in convs.enumerated() {
      h = try norm.forward(conv.forward(h))
      if index < convs.count - 1 { h = try h.relu() }
    }
    let identity = try downsample?.forward(x) ?? x
    return try (h + identity).relu()
  }
}

extension ResNet: ActivationFusing {
  /// The stem's convolution applies its ReLU once its batch norm is folded, as the blocks' do.
  public func fuseOwnActivations() -> Int {
    guard let conv = stem[0] as? Conv2d, conv.fusedActivation == nil, (stem[1] as? BatchNorm2d)?.isFolded == true,
          let relu = stem[2] as? FusableActivation
    else { return 0 }
    conv.fusedActivation = relu.convolutionActivation
    relu.fusedIntoConvolution = true
    return 1
  }
}

/// A residual block in int8: int8 activations in and out, the identity (or its
/// projection) added and the ReLU applied inside the last convolution's kernel.
struct Int8ResidualBlock {
  let convs: [Int8Convolution]
  let downsample: Int8Convolution?

  /// `inputIsShared`: whether `x` is still read after the block (so the identity's
  /// values may not be overwritten by the sum).
  func callAsFunction(_ x: QuantizedActivation, inputIsShared: Bool) throws -> QuantizedActivation {
    var h = x
    for conv in convs.dropLast() { h = try conv(h, then: .relu) }
    let identity = try downsample.map { try $0(x) } ?? x
    return try convs.last!(h, adding: identity, consumingResidual: downsample != nil || !inputIsShared, then: .relu)
  }
}

/// ResNet's int8 path (see `ResNet.int8Path`).
struct Int8ResNet {
  let stem: Int8Chain
  let stages: [[Int8ResidualBlock]]

  func features(_ x: Tensor) throws -> [Tensor] {
    var h = try stem(x)
    return try stages.enumerated().map { index, blocks in
      // A stage's input is the previous stage's output, which its dequantised feature still reads.
      for (b, block) in blocks.enumerated() { h = try block(h, inputIsShared: index > 0 && b == 0) }
      return try h.dequantized()
    }
  }
}

extension ResNet: EncoderFamily {
  public static let names = ["resnet18", "resnet34", "resnet50", "resnet101"]

  public static func make(_ name: String, outputStride: Int, inputChannels: Int) throws -> (any Encoder)? {
    guard names.contains(name), let depth = Int(name.dropFirst("resnet".count)) else { return nil }
    return try ResNet(depth: depth, outputStride: outputStride, inputChannels: inputChannels)
  }
}
