import SegKitNN

/// FCN-32s, FCN-16s and FCN-8s (Long et al., "Fully Convolutional Networks for
/// Semantic Segmentation"), as seg-mentor builds them over any feature extractor:
/// class scores from the last feature, refined by scores from the stride-16 and
/// stride-8 features.
///
/// - `score_fr`: 1×1 conv, last feature → classes.
/// - `score_pool4`, `score_pool3` (16s, 8s): 1×1 convs on the stride-16 and
///   stride-8 features, zero-initialised so training starts from the coarser net.
/// - `upscore2` (score_fr → pool4) and `upscore_pool4` (fused → pool3): learned
///   transposed convolutions (kernel 2f, stride f, no bias) initialised to bilinear
///   upsampling; absent where a dilated encoder keeps both maps at one stride.
/// - `upscore`: the final ×f to the input, kernel 2f, one bilinear filter per class
///   (grouped, so it grows linearly with the class count; Long et al. kept this
///   layer fixed at bilinear).
/// Each upsampled map is cropped to the skip's (or the input's) size, see `fitted`.
///
/// FCN fuses in class space, so it ends in class scores itself: its class heads
/// are the per-level scores (`score_fr`, `score_pool4`, `score_pool3`), and the
/// model adds none (`classHeadKey` nil).
public final class FCNDecoder: Module, Decoder {
  public enum Variant: String, CaseIterable, Sendable { case fcn32s, fcn16s, fcn8s }

  public let variant: Variant
  let scoreFr: ClassHead
  /// score_pool4, score_pool3 (as many as the variant uses), with the upsampling before each.
  let skips: [(score: ClassHead, upsample: ConvTranspose2d?)]
  let upscore: ConvTranspose2d
  public let outputChannels: Int

  /// - Parameters:
  ///   - featureChannels, featureStrides: the encoder's (see `Encoder.featureStrides`).
  public init(_ variant: Variant, featureChannels: [Int], featureStrides: [Int] = [4, 8, 16, 32], classes: Int) throws {
    self.variant = variant
    let skipLevels = Array([2, 1].prefix(variant == .fcn32s ? 0 : variant == .fcn16s ? 1 : 2))
    scoreFr = try ClassHead(inChannels: featureChannels[3], classes: classes)
    var coarser = 3
    var skips: [(ClassHead, ConvTranspose2d?)] = []
    for level in skipLevels {
      let score = try Conv2d(featureChannels[level], classes, kernelSize: 1)
      try Init.zeros_(score.weight)
      try Init.zeros_(score.bias!)
      let factor = featureStrides[coarser] / featureStrides[level]
      let head = ClassHead(layer: score, inChannels: featureChannels[level], classes: classes)
      skips.append((head, factor > 1 ? try Self.bilinearUpsampler(classes, factor: factor, grouped: false) : nil))
      coarser = level
    }
    self.skips = skips
    upscore = try Self.bilinearUpsampler(classes, factor: featureStrides[coarser], grouped: true)
    outputChannels = classes
    super.init()
    registerModule("score_fr", scoreFr.layer)
    for ((score, upsample), (level, upName)) in zip(skips, [(4, "upscore2"), (3, "upscore_pool4")]) {
      if let upsample { registerModule(upName, upsample) }
      registerModule("score_pool\(level)", score.layer)
    }
    registerModule("upscore", upscore)
  }

  /// A transposed convolution that upsamples exactly ×factor (kernel 2·factor,
  /// padding factor/2) and starts as bilinear interpolation.
  static func bilinearUpsampler(_ channels: Int, factor: Int, grouped: Bool) throws -> ConvTranspose2d {
    let deconv = try ConvTranspose2d(
      channels, channels, kernelSize: Size2(2 * factor), stride: Size2(factor), padding: Size2(factor / 2),
      groups: grouped ? channels : 1, bias: false)
    if grouped {
      // Each group's (1, 1, k, k) slice gets the kernel.
      for channel in 0..<channels {
        try Init.bilinearUpsampling_(deconv.weight.narrow(dim: 0, start: channel, length: 1))
      }
    } else {
      try Init.bilinearUpsampling_(deconv.weight)
    }
    return deconv
  }

  public var classHeadKey: String? { nil }

  public func forward(features: [Tensor], inputSize: Size2) throws -> Tensor {
    var score = try scoreFr(features[3])
    for ((skipScore, upsample), level) in zip(skips, [2, 1]) {
      let skip = try skipScore(features[level])
      if let upsample { score = try upsample(score) }
      score = try score.fitted(to: skip.spatialSize) + skip
    }
    return try upscore(score).fitted(to: inputSize)
  }
}
