import SegKitNN

/// A SegNet-style decoder (Badrinarayanan et al.; the TensorFlow DVSNet variant's ResNet50-SegNet): it
/// mirrors the encoder's downsampling steps with upsampling steps and passes no
/// encoder features across, only the last one through. SegNet upsamples with the
/// encoder's max-pooling indices; the encoders here (ResNet's strided convs,
/// MobileNet, ...) have no such indices, so each stage upsamples bilinearly (no
/// parameters, like unpooling) to the next finer feature's size, then to stride 2
/// and to the input, each followed by two 3×3 conv-BN-ReLU, which learn the detail
/// unpooling would have placed. Where a dilated encoder keeps two features at one
/// stride, that stage keeps the resolution, mirroring the stage that did.
///
/// Keys: `stages.N.{0,1,3,4}` (N = 0…4), and the model's 1×1 class head `logits`. Inputs are padded to a multiple
/// of 32 (`requiredDivisor`) so every stage doubles exactly.
public final class SegNetDecoder: Module, Decoder {
  let stages: [Sequential]
  public let outputChannels: Int

  /// - Parameter channels: output channels of the five stages.
  public init(featureChannels: [Int], channels: [Int] = [256, 128, 64, 32, 16]) throws {
    guard channels.count == 5 else { throw ModelError("SegNetDecoder: expected 5 stage widths, got \(channels)") }
    // SegNet passes no encoder features across: every stage has zero skip channels.
    let built = try doubleConvStages(input: featureChannels[3], skips: Array(repeating: 0, count: 5), widths: channels)
    stages = built.stages
    outputChannels = built.channels
    super.init()
    registerModule("stages", ModuleList(stages))
  }

  public var requiredDivisor: Int { 32 }
  public var classHeadKey: String? { "logits" }

  public func forward(features: [Tensor], inputSize: Size2) throws -> Tensor {
    let stride4 = features[0].spatialSize
    let targets = [features[2].spatialSize, features[1].spatialSize, stride4,
                   Size2(2 * stride4.height, 2 * stride4.width), inputSize]
    var x = features[3]
    for (stage, target) in zip(stages, targets) {
      x = try stage(x.resized(to: target))
    }
    return x
  }
}
