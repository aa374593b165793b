import SegKitNN

/// torchvision's VGG-16 (configuration "D"), with or without batch norm, as a
/// feature extractor: its `features` under torchvision's keys (`features.N.*`), so
/// the ImageNet checkpoints of vgg16 and vgg16_bn load; `avgpool` and the fully
/// connected `classifier` are dropped.
///
/// The four features are the outputs of pool2, pool3, pool4 and pool5 (strides 4,
/// 8, 16, 32; 128, 256, 512, 512 channels). The classic FCN-VGG16 also runs fc6/fc7
/// as 7×7 and 1×1 convolutions on pool5; this encoder keeps only the convolutional
/// part, so a decoder reads pool5 itself.
///
/// `featureLevels` adds the output of each stage's last convolution (after its ReLU),
/// before the pool: conv1_2, conv2_2, conv3_3, conv4_3, conv5_3 (strides 1, 2, 4, 8,
/// 16), which OSVOS-style side outputs read.
///
/// Output stride 16 (or 8) replaces pool5 (and pool4) by a stride-1 `DilatedMaxPool2d`
/// and dilates every convolution after it by the stride given up. The pool, the
/// layer that held the stride, keeps the previous dilation (as the strided block
/// does in torchvision's ResNet); the first convolution after it already reads the
/// denser grid, so it takes the new dilation. With sides divisible by 32 the dilated
/// features sampled every 2 (or 4) pixels equal the stride-32 ones exactly.
public final class VGG: Module, Encoder {
  public let featureChannels = [128, 256, 512, 512]
  public let outputStride: Int
  public var featureStrides: [Int] { cappedFeatureStrides(outputStride: outputStride) }
  public let featureLevels: [FeatureLevel]
  let layers: Sequential
  /// Positions in `layers` whose outputs are the levels, one for each of `featureLevels`.
  let levelIndices: [Int]
  /// Which levels are the four features (pool2…pool5).
  let featureLevelIndices: [Int]

  /// - Parameters:
  ///   - batchNorm: true for vgg16_bn (a batch norm after each convolution).
  ///   - outputStride: 32, 16 (pool5 without stride) or 8 (pool4 and pool5 without stride).
  ///   - inputChannels: 3 for RGB; more for extra inputs such as a previous mask.
  public init(batchNorm: Bool = false, outputStride: Int = 32, inputChannels: Int = 3) throws {
    let stridelessPools: Int
    switch outputStride {
    case 32: stridelessPools = 0
    case 16: stridelessPools = 1
    case 8: stridelessPools = 2
    default: throw ModelError("VGG: output stride must be 8, 16 or 32, got \(outputStride)")
    }
    let stages = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
    var layers: [any Layer] = []
    var levels: [(index: Int, level: FeatureLevel)] = []
    var featureLevelIndices: [Int] = []
    var inChannels = inputChannels
    var dilation = 1
    var stride = 1
    for (stage, widths) in stages.enumerated() {
      for width in widths {
        layers.append(try Conv2d(
          inChannels, width, kernelSize: 3, padding: Size2(dilation), dilation: Size2(dilation)))
        if batchNorm { layers.append(try BatchNorm2d(width)) }
        layers.append(ReLU())
        inChannels = width
      }
      let lastConv = FeatureLevel("conv\(stage + 1)_\(widths.count)", channels: inChannels, stride: stride)
      levels.append((layers.count - 1, lastConv))
      if stage >= stages.count - stridelessPools {
        layers.append(DilatedMaxPool2d(kernelSize: 2, dilation: dilation, centred: false))
        dilation *= 2
      } else {
        layers.append(MaxPool2d(kernelSize: 2, stride: 2))
        stride *= 2
      }
      if stage > 0 {
        featureLevelIndices.append(levels.count)
        levels.append((layers.count - 1, FeatureLevel("pool\(stage + 1)", channels: inChannels, stride: stride)))
      }
    }
    self.outputStride = outputStride
    self.layers = Sequential(layers)
    levelIndices = levels.map(\.index)
    featureLevels = levels.map(\.level)
    self.featureLevelIndices = featureLevelIndices
    super.init()
    registerModule("features", self.layers)
  }

  public func features(_ x: Tensor) throws -> [Tensor] {
    let all = try allFeatures(x)
    return featureLevelIndices.map { all[$0] }
  }

  public func allFeatures(_ x: Tensor) throws -> [Tensor] {
    let used = Array(layers.layers.prefix(levelIndices.last! + 1))
    if let chain = Int8Chain(used, for: x) {
      // int8 activations from the first convolution on, dequantised at the levels only.
      var features: [Tensor] = []
      try chain.run(x) { index, h in
        if levelIndices.contains(index) { features.append(try h.dequantized()) }
        return features.count < levelIndices.count
      }
      return features
    }
    var h = x
    var features: [Tensor] = []
    for (index, layer) in layers.layers.enumerated().prefix(levelIndices.last! + 1) {
      h = try layer.forward(h)
      if levelIndices.contains(index) { features.append(h) }
    }
    return features
  }

  /// Whether `allFeatures(x)` keeps int8 activations between its layers.
  public func keepsInt8Activations(for x: Tensor) -> Bool {
    Int8Chain(Array(layers.layers.prefix(levelIndices.last! + 1)), for: x) != nil
  }

  public var inputConvolutionKey: String { "features.0.weight" }

  public func encoderKey(forClassificationKey key: String) -> String? {
    key.hasPrefix("features.") ? key : nil
  }
}

/// A stride-1 k×k max pool whose taps are `dilation` apart, on an input padded with
/// −∞: on the bottom and right only (`centred` false) where it stands in for a
/// strided, unpadded pool when a network trades stride for dilation, so that on the
/// denser grid position s·i pools exactly the inputs the stride-s pool's output i
/// pooled (à trous) and the size is kept; on every side (`centred`) for a dilated
/// "same" pool. The padding is explicit because torch's pools refuse padding wider
/// than half the (undilated) kernel.
final class DilatedMaxPool2d: Module, Layer {
  let kernelSize: Int
  let dilation: Int
  let pads: [Int]

  init(kernelSize: Int, dilation: Int, centred: Bool) {
    self.kernelSize = kernelSize
    self.dilation = dilation
    let reach = dilation * (kernelSize - 1)
    pads = centred ? Array(repeating: reach / 2, count: 4) : [0, reach, 0, reach]
  }

  func forward(_ x: Tensor) throws -> Tensor {
    try x.pad(pads, value: -.infinity).maxPool2d(kernel: Size2(kernelSize), stride: 1, dilation: Size2(dilation))
  }
}

extension VGG: EncoderFamily {
  public static let names = ["vgg16", "vgg16_bn"]

  public static func make(_ name: String, outputStride: Int, inputChannels: Int) throws -> (any Encoder)? {
    guard names.contains(name) else { return nil }
    return try VGG(batchNorm: name == "vgg16_bn", outputStride: outputStride, inputChannels: inputChannels)
  }
}
