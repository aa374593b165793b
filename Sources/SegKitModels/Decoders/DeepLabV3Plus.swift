import SegKitNN

/// DeepLab v3+'s decoder (Chen et al. 2018): ASPP on the last feature, upsampled
/// bilinearly to the stride-4 feature's size (×4 at output stride 16, ×2 at 8),
/// concatenated with that low-level feature reduced to 48 channels, refined by two
/// 3×3 convs of 256 channels; the model's 1×1 class head gives the logits. DeepLabv3 itself is
/// torchvision's `DeepLabHead` (ASPP, 3×3 conv, 1×1 conv).
///
/// Keys: `aspp.*` (torchvision's ASPP), `low_level.{0,1}` (1×1 conv 48, BN),
/// `fuse.{0,1,3,4}` (two 3×3 conv-BN-ReLU), and the class head `logits` (1×1 conv with bias). With
/// `separable`, ASPP's dilated branches and the two 3×3 convs are depthwise-separable
/// (DeepLab's `aspp_with_separable_conv` and `decoder_use_separable_conv`).
public final class DeepLabV3PlusDecoder: Module, Decoder {
  let aspp: ASPP
  let lowLevel: Sequential
  let fuse: Sequential
  public let outputChannels: Int

  /// - Parameters:
  ///   - featureChannels: the encoder's; the stride-4 (index 0) and last features are read.
  ///   - rates: ASPP's atrous rates, e.g. `ASPP.rates(outputStride:)`.
  public init(
    featureChannels: [Int], rates: [Int], separable: Bool = false, asppChannels: Int = 256,
    lowLevelChannels: Int = 48, decoderChannels: Int = 256
  ) throws {
    aspp = try ASPP(inChannels: featureChannels[3], rates: rates, outChannels: asppChannels, separable: separable)
    lowLevel = Sequential(try convBNReLU(featureChannels[0], lowLevelChannels, kernelSize: 1))
    fuse = Sequential(
      try convBNReLU(asppChannels + lowLevelChannels, decoderChannels, separable: separable)
        + convBNReLU(decoderChannels, decoderChannels, separable: separable))
    outputChannels = decoderChannels
    super.init()
    registerModule("aspp", aspp)
    registerModule("low_level", lowLevel)
    registerModule("fuse", fuse)
  }

  public var classHeadKey: String? { "logits" }

  /// The fused map at the stride-4 feature's resolution.
  public func forward(features: [Tensor], inputSize: Size2) throws -> Tensor {
    let low = try lowLevel(features[0])
    let high = try aspp(features[3]).resized(to: low.spatialSize)
    return try fuse(Tensor.cat([high, low], dim: 1))
  }
}
