import SegKitNN

/// torchvision's GoogLeNet (Inception-v1) as a feature extractor, under
/// torchvision's keys; the auxiliary classifiers (`aux1`, `aux2`), `dropout` and
/// `fc` are dropped. As in torchvision, the "5×5" branch of each Inception block
/// uses a 3×3 convolution (the paper has 5×5; the checkpoint has 3×3 filters).
///
/// Features (192, 480, 832, 1024 channels):
/// - stride 4: conv3, after conv1 and maxpool1 (and conv2);
/// - stride 8: inception3b, after maxpool2;
/// - stride 16: inception4e, after maxpool3;
/// - stride 32: inception5b, after maxpool4.
///
/// No input transform: torchvision's `transform_input` (on for its pretrained
/// weights) maps ImageNet-normalised input to (x − 0.5) / 0.5, the normalisation
/// those TensorFlow-trained weights expect, so feed them inputs normalised that way.
///
/// Output stride 16 (or 8) replaces maxpool4 (and maxpool3) by a stride-1
/// `DilatedMaxPool2d` at the previous dilation and dilates the Inception blocks after
/// it (their 3×3 convolutions and 3×3 branch pools), as `VGG` does; with sides
/// divisible by 32 the dilated features sampled every 2 (or 4) pixels equal the
/// stride-32 ones exactly.
public final class GoogLeNet: Module, Encoder {
  public let featureChannels = [192, 480, 832, 1024]
  public let outputStride: Int
  public var featureStrides: [Int] { cappedFeatureStrides(outputStride: outputStride) }
  let stem: [any Layer]
  /// The stages after the stem, each a pool and its Inception blocks.
  let stages: [[any Layer]]

  public init(outputStride: Int = 32, inputChannels: Int = 3) throws {
    let stridelessPools: Int
    switch outputStride {
    case 32: stridelessPools = 0
    case 16: stridelessPools = 1
    case 8: stridelessPools = 2
    default: throw ModelError("GoogLeNet: output stride must be 8, 16 or 32, got \(outputStride)")
    }
    self.outputStride = outputStride
    let named: [(String, any Layer)] = [
      ("conv1", try BasicConv2d(inputChannels, 64, kernelSize: 7, stride: 2, padding: 3)),
      ("maxpool1", MaxPool2d(kernelSize: 3, stride: 2, ceilMode: true)),
      ("conv2", try BasicConv2d(64, 64, kernelSize: 1)),
      ("conv3", try BasicConv2d(64, 192, kernelSize: 3, padding: 1)),
    ]
    // (pool name, pool kernel, blocks: name, in, 1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5", pool projection)
    let stageSpecs: [(String, Int, [(String, [Int])])] = [
      ("maxpool2", 3, [
        ("inception3a", [192, 64, 96, 128, 16, 32, 32]),
        ("inception3b", [256, 128, 128, 192, 32, 96, 64]),
      ]),
      ("maxpool3", 3, [
        ("inception4a", [480, 192, 96, 208, 16, 48, 64]),
        ("inception4b", [512, 160, 112, 224, 24, 64, 64]),
        ("inception4c", [512, 128, 128, 256, 24, 64, 64]),
        ("inception4d", [512, 112, 144, 288, 32, 64, 64]),
        ("inception4e", [528, 256, 160, 320, 32, 128, 128]),
      ]),
      ("maxpool4", 2, [
        ("inception5a", [832, 256, 160, 320, 32, 128, 128]),
        ("inception5b", [832, 384, 192, 384, 48, 128, 128]),
      ]),
    ]
    var dilation = 1
    var stages: [[(String, any Layer)]] = []
    for (index, (poolName, kernel, blocks)) in stageSpecs.enumerated() {
      let pool: any Layer
      if index >= stageSpecs.count - stridelessPools {
        pool = DilatedMaxPool2d(kernelSize: kernel, dilation: dilation, centred: false)
        dilation *= 2
      } else {
        pool = MaxPool2d(kernelSize: Size2(kernel), stride: 2, ceilMode: true)
      }
      stages.append([(poolName, pool)] + (try blocks.map { name, c in
        (name, try Inception(c[0], c[1], c[2], c[3], c[4], c[5], c[6], dilation: dilation) as any Layer)
      }))
    }
    stem = named.map { $0.1 }
    self.stages = stages.map { $0.map { $0.1 } }
    super.init()
    for (name, layer) in named + stages.joined() { registerModule(name, layer) }
  }

  public func features(_ x: Tensor) throws -> [Tensor] {
    var h = try stem.reduce(x) { try $1.forward($0) }
    var features = [h]
    for stage in stages {
      h = try stage.reduce(h) { try $1.forward($0) }
      features.append(h)
    }
    return features
  }

  public var inputConvolutionKey: String { "conv1.conv.weight" }

  public func encoderKey(forClassificationKey key: String) -> String? {
    ["aux1.", "aux2.", "fc."].contains { key.hasPrefix($0) } ? nil : key
  }
}

/// A convolution without bias, its batch norm (ε = 0.001) and optionally a ReLU,
/// as children "conv" and "bn": torchvision's BasicConv2d (GoogLeNet, Inception)
/// and the layout of timm's ConvNormAct (Xception).
final class BasicConv2d: Module, Layer, ConvBatchNormPairs, ActivationFusing {
  let conv: Conv2d
  let bn: BatchNorm2d
  let relu: Bool

  init(
    _ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0, dilation: Int = 1,
    relu: Bool = true
  ) throws {
    conv = try Conv2d(
      inChannels, outChannels, kernelSize: Size2(kernelSize), stride: Size2(stride), padding: Size2(padding),
      dilation: Size2(dilation), bias: false)
    bn = try BatchNorm2d(outChannels, eps: 0.001)
    self.relu = relu
    super.init()
    registerModule("conv", conv)
    registerModule("bn", bn)
  }

  var convBatchNormPairs: [(Conv2d, BatchNorm2d)] { [(conv, bn)] }

  func fuseOwnActivations() -> Int {
    guard relu, bn.isFolded, conv.fusedActivation == nil else { return 0 }
    conv.fusedActivation = .relu
    return 1
  }

  func forward(_ x: Tensor) throws -> Tensor {
    let y = try bn(conv(x))
    // A fused convolution has applied the ReLU (and the folded batch norm passes it on).
    return relu && (conv.fusedActivation == nil || isTraining) ? try y.relu() : y
  }
}

/// torchvision's Inception block: four branches concatenated along channels (1×1;
/// 1×1 then 3×3; 1×1 then 3×3 where the paper has 5×5; 3×3 max pool then 1×1).
/// `dilation` spaces the 3×3 convolutions' and the pool's taps.
final class Inception: Module, Layer {
  let branches: [any Layer]

  init(
    _ inChannels: Int, _ ch1x1: Int, _ ch3x3Reduce: Int, _ ch3x3: Int, _ ch5x5Reduce: Int, _ ch5x5: Int,
    _ poolProjection: Int, dilation: Int
  ) throws {
    branches = [
      try BasicConv2d(inChannels, ch1x1, kernelSize: 1),
      Sequential(
        try BasicConv2d(inChannels, ch3x3Reduce, kernelSize: 1),
        try BasicConv2d(ch3x3Reduce, ch3x3, kernelSize: 3, padding: dilation, dilation: dilation)),
      Sequential(
        try BasicConv2d(inChannels, ch5x5Reduce, kernelSize: 1),
        try BasicConv2d(ch5x5Reduce, ch5x5, kernelSize: 3, padding: dilation, dilation: dilation)),
      Sequential(
        dilation == 1
          ? MaxPool2d(kernelSize: 3, stride: 1, padding: 1, ceilMode: true) as any Layer
          : DilatedMaxPool2d(kernelSize: 3, dilation: dilation, centred: true),
        try BasicConv2d(inChannels, poolProjection, kernelSize: 1)),
    ]
    super.init()
    for (index, branch) in branches.enumerated() { registerModule("branch\(index + 1)", branch) }
  }

  func forward(_ x: Tensor) throws -> Tensor {
    try Tensor.cat(branches.map { try $0.forward(x) }, dim: 1)
  }
}

extension GoogLeNet: EncoderFamily {
  public static let names = ["googlenet"]

  public static func make(_ name: String, outputStride: Int, inputChannels: Int) throws -> (any Encoder)? {
    guard names.contains(name) else { return nil }
    return try GoogLeNet(outputStride: outputStride, inputChannels: inputChannels)
  }
}
