import SegKitNN

/// torchvision's LRASPPHead (Lite R-ASPP, "Searching for MobileNetV3"): the high
/// feature through 1×1 conv + BN + ReLU (`cbr`), gated by a global-pooled 1×1 conv +
/// sigmoid (`scale`), upsampled to the low feature's size and classified
/// (`high_classifier`), plus a 1×1 classifier on the low feature (`low_classifier`).
///
/// Over any encoder: low is the stride-8 feature (index 1), high the last. It ends in
/// class scores itself: its two classifiers are class heads whose sum is the logits.
public final class LRASPPHead: Module, Decoder {
  let cbr: Sequential
  let scale: Sequential
  let lowClassifier: ClassHead
  let highClassifier: ClassHead
  /// Which encoder feature is the low input.
  public let lowFeatureIndex: Int
  public let outputChannels: Int
  public var classHeadKey: String? { nil }

  public init(
    lowChannels: Int, highChannels: Int, classes: Int, interChannels: Int = 128, lowFeatureIndex: Int = 1
  ) throws {
    cbr = Sequential(
      try Conv2d(highChannels, interChannels, kernelSize: 1, bias: false), try BatchNorm2d(interChannels), ReLU())
    scale = Sequential(
      AdaptiveAvgPool2d(1), try Conv2d(highChannels, interChannels, kernelSize: 1, bias: false), Sigmoid())
    lowClassifier = try ClassHead(inChannels: lowChannels, classes: classes)
    highClassifier = try ClassHead(inChannels: interChannels, classes: classes)
    self.lowFeatureIndex = lowFeatureIndex
    outputChannels = classes
    super.init()
    registerModule("cbr", cbr)
    registerModule("scale", scale)
    registerModule("low_classifier", lowClassifier.layer)
    registerModule("high_classifier", highClassifier.layer)
  }

  /// Logits at the low feature's resolution.
  public func forward(low: Tensor, high: Tensor) throws -> Tensor {
    let lowShape = low.shape
    let gated = try (cbr.forward(high) * scale.forward(high))
      .interpolate(size: Size2(lowShape[2], lowShape[3]), mode: .bilinear)
    return try lowClassifier(low) + highClassifier(gated)
  }

  public func forward(features: [Tensor], inputSize: Size2) throws -> Tensor {
    try forward(low: features[lowFeatureIndex], high: features.last!)
  }
}
