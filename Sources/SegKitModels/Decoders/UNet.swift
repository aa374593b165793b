import SegKitNN

/// U-Net's decoder (Ronneberger et al.) over any encoder, as
/// segmentation_models.pytorch builds it: from the last feature, each stage
/// upsamples (nearest) to the next finer feature's size, concatenates that feature
/// and applies two 3×3 conv-BN-ReLU; two more stages without skips reach stride 2
/// and the input's resolution. The model's 1×1 class head (`logits`) gives the logits.
///
/// Keys: `stages.N.{0,1,3,4}` (N = 0…4), `logits`. Inputs are padded to a multiple
/// of 32 (`requiredDivisor`) so every stage doubles exactly.
public final class UNetDecoder: Module, Decoder {
  let stages: [Sequential]
  public let outputChannels: Int

  /// - Parameter channels: output channels of the five stages (strides 16, 8, 4, 2, 1
  ///   for a stride-32 encoder).
  public init(featureChannels: [Int], channels: [Int] = [256, 128, 64, 32, 16]) throws {
    guard channels.count == 5 else { throw ModelError("UNetDecoder: expected 5 stage widths, got \(channels)") }
    let skips = [featureChannels[2], featureChannels[1], featureChannels[0], 0, 0]
    let built = try doubleConvStages(input: featureChannels[3], skips: skips, widths: channels)
    stages = built.stages
    outputChannels = built.channels
    super.init()
    registerModule("stages", ModuleList(stages))
  }

  public var requiredDivisor: Int { 32 }
  public var classHeadKey: String? { "logits" }

  public func forward(features: [Tensor], inputSize: Size2) throws -> Tensor {
    var x = features[3]
    for (index, stage) in stages.enumerated() {
      if index < 3 {
        let skip = features[2 - index]
        x = try Tensor.cat([x.resized(to: skip.spatialSize, mode: .nearest), skip], dim: 1)
      } else {
        let size = x.spatialSize
        let target = index == 4 ? inputSize : Size2(2 * size.height, 2 * size.width)
        x = try x.resized(to: target, mode: .nearest)
      }
      x = try stage(x)
    }
    return x
  }
}
