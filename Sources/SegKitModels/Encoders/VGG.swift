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
/// Output stride 16 (or 8) replaces pool5 (and pool4) by a stride-1 `DilatedMaxPool2d`
/// and dilates every convolution after it by the stride given up. The pool, the
/// layer that held the stride, keeps the previous dilation (as the strided block
/// does in torchvision's ResNet); the first convolution after it already reads the
/// denser grid, so it takes the new dilation. With sides divisible by 32 the dilated
/// features sampled every 2 (or 4) pixels equal the stride-32 ones exactly.
public final class VGG: Module, Encoder {
  public let featureChannels = [128, 256, 512, 512]
  public let outputStride: Int
  let layers: Sequential
  /// Positions of pool2…pool5 in `layers`.
  let featureIndices: [Int]

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
    default: throw TorchError("VGG: output stride must be 8, 16 or 32, got \(outputStride)")
    }
    let stages = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
    var layers: [any Layer] = []
    var featureIndices: [Int] = []
    var inChannels = inputChannels
    var dilation = 1
    for (stage, widths) in stages.enumerated() {
      for width in widths {
        layers.append(try Conv2d(
          inChannels, width, kernelSize: 3, padding: Size2(dilation), dilation: Size2(dilation)))
        if batchNorm { layers.append(try BatchNorm2d(width)) }
        layers.append(ReLU())
        inChannels = width
      }
      if stage >= stages.count - stridelessPools {
        layers.append(DilatedMaxPool2d(kernelSize: 2, dilation: dilation, centred: false))
        dilation *= 2
      } else {
        layers.append(MaxPool2d(kernelSize: 2, stride: 2))
      }
      if stage > 0 { featureIndices.append(layers.count - 1) }
    }
    self.outputStride = outputStride
    self.layers = Sequential(layers)
    self.featureIndices = featureIndices
    super.init()
    registerModule("features", self.layers)
  }

  public func features(_ x: Tensor) throws -> [Tensor] {
    var h = x
    var features: [Tensor] = []
    for (index, layer) in layers.layers.enumerated().prefix(featureIndices.last! + 1) {
      h = try layer.forward(h)
      if featureIndices.contains(index) { features.append(h) }
    }
    return features
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
