import SegKitNN

/// torchvision's MobileNetV3-Large (width 1.0) without its classifier, as a feature
/// extractor: batch norm with eps 0.001 and momentum 0.01, Hardswish in the later
/// blocks, squeeze-excitation gated by Hardsigmoid.
///
/// The blocks are this module's children "0" … "16", as torchvision's `features.N`
/// (the classification checkpoint's `features.` prefix is dropped when loading; the
/// segmentation models' `backbone.N` keys match directly): 0 stem (stride 2), 1 (16 ch),
/// 2–3 (24 ch, stride 4), 4–6 (40 ch, stride 8), 7–12 (80 then 112 ch, stride 16),
/// 13–15 (160 ch, stride 32), 16 the 1×1 convolution to 960 channels. The features are
/// by default the outputs of blocks 3, 6, 12 and 16 (24, 40, 112, 960 channels).
/// torchvision's segmentation models read block 4 instead of 6 at stride 8:
/// pass `torchvisionSegmentationFeatureIndices`.
///
/// Output stride 16 is torchvision's `dilated=True`: the stride-32 stage runs at stride 1
/// with dilation 2 in all its blocks, the first included. Output stride 8 applies the
/// same rule to the stride-16 stage too (dilation 2, then 4).
public final class MobileNetV3Large: Module, BlockListEncoder {
  /// The blocks torchvision's `deeplabv3_mobilenet_v3_large` and `lraspp_mobilenet_v3_large`
  /// read: 4 (stride 8, the LR-ASPP low input and DeepLab's auxiliary input) and 16.
  public static let torchvisionSegmentationFeatureIndices = [3, 4, 12, 16]

  public let featureChannels: [Int]
  public let outputStride: Int
  /// The blocks whose outputs `features(_:)` returns.
  public let featureIndices: [Int]
  public let blocks: [any Layer]

  /// - Parameters:
  ///   - outputStride: 32, 16 (torchvision's `dilated=True`) or 8.
  ///   - inputChannels: 3 for RGB; more for extra inputs such as a previous mask.
  ///   - featureIndices: the blocks to return, one at each stride 4, 8, 16, 32
  ///     (default: the last block at each).
  public init(outputStride: Int = 32, inputChannels: Int = 3, featureIndices: [Int]? = nil) throws {
    // (kernel, expanded, output channels, squeeze-excitation, Hardswish, stride);
    // each block's input is the previous block's output, the stem gives 16.
    let settings: [(Int, Int, Int, Bool, Bool, Int)] = [
      (3, 16, 16, false, false, 1),
      (3, 64, 24, false, false, 2), (3, 72, 24, false, false, 1),
      (5, 72, 40, true, false, 2), (5, 120, 40, true, false, 1), (5, 120, 40, true, false, 1),
      (3, 240, 80, false, true, 2), (3, 200, 80, false, true, 1), (3, 184, 80, false, true, 1),
      (3, 184, 80, false, true, 1), (3, 480, 112, true, true, 1), (3, 672, 112, true, true, 1),
      (5, 672, 160, true, true, 2), (5, 960, 160, true, true, 1), (5, 960, 160, true, true, 1),
    ]
    let strides = [2] + settings.map(\.5) + [1]
    let schedule = try dilatedSchedule(
      strides: strides, outputStride: outputStride, firstBlockKeepsDilation: false, network: "MobileNetV3Large")
    self.featureIndices = try featureBlockIndices(featureIndices, strides: strides, network: "MobileNetV3Large")
    self.outputStride = outputStride

    let norm = { (channels: Int) in try BatchNorm2d(channels, eps: 0.001, momentum: 0.01) }
    var blocks: [any Layer] = [
      try convNormActivation(inputChannels, 16, kernelSize: 3, stride: 2, norm: norm, activation: Hardswish())
    ]
    var channels = [16]
    var input = 16
    for (kernel, expanded, output, se, hardswish, nominalStride) in settings {
      let (stride, dilation) = schedule[blocks.count]
      func activation() -> any Layer { hardswish ? Hardswish() : ReLU() }
      var layers: [any Layer] = []
      if expanded != input {
        layers.append(try convNormActivation(input, expanded, kernelSize: 1, norm: norm, activation: activation()))
      }
      layers.append(try convNormActivation(
        expanded, expanded, kernelSize: kernel, stride: stride, dilation: dilation, groups: expanded, norm: norm,
        activation: activation()))
      if se {
        layers.append(try SqueezeExcitation(
          inputChannels: expanded, squeezeChannels: makeDivisible(expanded / 4), scaleActivation: Hardsigmoid()))
      }
      layers.append(try convNormActivation(expanded, output, kernelSize: 1, norm: norm, activation: nil))
      // The residual depends on the nominal stride, as in torchvision.
      let residual = nominalStride == 1 && input == output
      blocks.append(InvertedResidual(Sequential(layers), name: "block", residual: residual))
      channels.append(output)
      input = output
    }
    blocks.append(try convNormActivation(input, 6 * input, kernelSize: 1, norm: norm, activation: Hardswish()))
    channels.append(6 * input)
    self.blocks = blocks
    featureChannels = self.featureIndices.map { channels[$0] }
    super.init()
    for (index, block) in blocks.enumerated() { registerModule(String(index), block) }
  }
}

/// torchvision's `_make_divisible(v, 8)`: the nearest multiple of 8, at least 8 and
/// not below 90% of `value` (squeeze-excitation widths: 72 / 4 = 18 → 24).
private func makeDivisible(_ value: Int, by divisor: Int = 8) -> Int {
  var rounded = max(divisor, (value + divisor / 2) / divisor * divisor)
  if Double(rounded) < 0.9 * Double(value) { rounded += divisor }
  return rounded
}

extension MobileNetV3Large: EncoderFamily {
  public static let names = ["mobilenet_v3_large"]

  public static func make(_ name: String, outputStride: Int, inputChannels: Int) throws -> (any Encoder)? {
    guard names.contains(name) else { return nil }
    return try MobileNetV3Large(outputStride: outputStride, inputChannels: inputChannels)
  }
}
