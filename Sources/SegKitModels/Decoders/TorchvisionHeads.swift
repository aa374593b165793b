import SegKitNN

/// torchvision's head layout: decoding layers `0`–`3`, then the 1×1 class head `4`, as
/// one Sequential registered under its indices. It ends in class scores itself.
public class SequentialHead: Module, Layer, Decoder, ConvBatchNormPairs {
  let body: Sequential
  /// The 1×1 convolution `4`.
  public let classHead: ClassHead
  public let outputChannels: Int
  public var classHeadKey: String? { nil }
  public var convBatchNormPairs: [(Conv2d, BatchNorm2d)] { body.convBatchNormPairs }

  init(decode: [any Layer], decodedChannels: Int, classes: Int) throws {
    classHead = try ClassHead(inChannels: decodedChannels, classes: classes)
    body = Sequential(decode + [classHead.layer])
    outputChannels = classes
    super.init()
    for (index, layer) in body.layers.enumerated() { registerModule(String(index), layer) }
  }

  public func forward(_ x: Tensor) throws -> Tensor { try body.forward(x) }

  public func forward(features: [Tensor], inputSize: Size2) throws -> Tensor { try forward(features.last!) }
}

/// torchvision's FCNHead: 3×3 conv to in/4 channels, BN, ReLU, Dropout(0.1), 1×1
/// conv to the classes (keys .0, .1, .4). Used as FCN's classifier on the last
/// feature and as the auxiliary head on layer3.
public final class FCNHead: SequentialHead {
  public init(inChannels: Int, classes: Int) throws {
    let inner = inChannels / 4
    try super.init(
      decode: [try Conv2d(inChannels, inner, kernelSize: 3, padding: 1, bias: false), try BatchNorm2d(inner), ReLU(), Dropout(p: 0.1)],
      decodedChannels: inner, classes: classes)
  }
}

/// Atrous spatial pyramid pooling (DeepLab v3): a 1×1 branch, three dilated 3×3
/// branches, image-level pooling, concatenated and projected to `outChannels`.
/// With `separable`, the dilated branches are depthwise-separable (DeepLab v3+'s
/// `aspp_with_separable_conv`; keys `convs.N.0.depthwise`, `convs.N.0.pointwise`).
public final class ASPP: Module, Layer {
  let branches: [any Layer]
  let project: Sequential

  /// DeepLab's rates: (6, 12, 18) at output stride 16, scaled inversely with the
  /// stride ((12, 24, 36) at 8, (3, 6, 9) at 32), so the field of view stays the same.
  public static func rates(outputStride: Int) -> [Int] { [1, 2, 3].map { $0 * 96 / outputStride } }

  public init(inChannels: Int, rates: [Int], outChannels: Int = 256, separable: Bool = false) throws {
    let branches: [any Layer] = [Sequential(try convBNReLU(inChannels, outChannels, kernelSize: 1))]
      + (try rates.map {
        Sequential(try convBNReLU(inChannels, outChannels, dilation: $0, separable: separable))
      })
      + [try ImagePooling(inChannels: inChannels, outChannels: outChannels)]
    self.branches = branches
    project = Sequential(
      try Conv2d(branches.count * outChannels, outChannels, kernelSize: 1, bias: false), try BatchNorm2d(outChannels),
      ReLU(), Dropout(p: 0.5))
    super.init()
    let convs = Module()
    for (index, branch) in branches.enumerated() { convs.registerModule(String(index), branch) }
    registerModule("convs", convs)
    registerModule("project", project)
  }

  public func forward(_ x: Tensor) throws -> Tensor {
    try project.forward(Tensor.cat(branches.map { try $0.forward(x) }, dim: 1))
  }
}

/// ASPP's image-level branch: global average, 1×1 conv, BN, ReLU, then
/// broadcast back to the feature size (keys .1, .2 as torchvision's ASPPPooling).
final class ImagePooling: Module, Layer, ConvBatchNormPairs {
  let body: Sequential
  public var convBatchNormPairs: [(Conv2d, BatchNorm2d)] { body.convBatchNormPairs }

  init(inChannels: Int, outChannels: Int) throws {
    body = Sequential(
      AdaptiveAvgPool2d(1), try Conv2d(inChannels, outChannels, kernelSize: 1, bias: false),
      try BatchNorm2d(outChannels), ReLU())
    super.init()
    for (index, layer) in body.layers.enumerated() { registerModule(String(index), layer) }
  }

  func forward(_ x: Tensor) throws -> Tensor {
    let shape = x.shape
    let pooled = try body.forward(x).interpolate(size: Size2(shape[2], shape[3]), mode: .bilinear)
    // Laid out as the other branches, so ASPP's concatenation stays channels-last and
    // the projection's kernel reads it without a copy of all five branches.
    return x.isLaidOut(.channelsLast) && !OperationTrace.isRecording ? try pooled.contiguous(.channelsLast) : pooled
  }
}

/// torchvision's DeepLabHead: ASPP, 3×3 conv, BN, ReLU, 1×1 conv to the classes.
public final class DeepLabHead: SequentialHead {
  public init(inChannels: Int, classes: Int, rates: [Int] = [12, 24, 36]) throws {
    try super.init(
      decode: [try ASPP(inChannels: inChannels, rates: rates), try Conv2d(256, 256, kernelSize: 3, padding: 1, bias: false),
               try BatchNorm2d(256), ReLU()],
      decodedChannels: 256, classes: classes)
  }
}
