import SegKitNN

/// Encoders by name, as they appear in model names (`DECODER_ENCODER`).
public enum EncoderRegistry {
  /// Every encoder name, in the order `segkit models` lists them.
  public static let names = [
    "resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v2", "mobilenet_v3_large",
    "vgg16", "vgg16_bn", "googlenet", "xception65",
  ]

  /// Builds the encoder `name` at `outputStride` (32, 16 or 8) for `inputChannels` input channels.
  public static func make(_ name: String, outputStride: Int = 32, inputChannels: Int = 3) throws -> any Encoder {
    switch name {
    case "resnet18": return try ResNet(depth: 18, outputStride: outputStride, inputChannels: inputChannels)
    case "resnet34": return try ResNet(depth: 34, outputStride: outputStride, inputChannels: inputChannels)
    case "resnet50": return try ResNet(depth: 50, outputStride: outputStride, inputChannels: inputChannels)
    case "resnet101": return try ResNet(depth: 101, outputStride: outputStride, inputChannels: inputChannels)
    case "mobilenet_v2": return try MobileNetV2(outputStride: outputStride, inputChannels: inputChannels)
    case "mobilenet_v3_large": return try MobileNetV3Large(outputStride: outputStride, inputChannels: inputChannels)
    case "vgg16": return try VGG(batchNorm: false, outputStride: outputStride, inputChannels: inputChannels)
    case "vgg16_bn": return try VGG(batchNorm: true, outputStride: outputStride, inputChannels: inputChannels)
    case "googlenet": return try GoogLeNet(outputStride: outputStride, inputChannels: inputChannels)
    case "xception65": return try Xception65(outputStride: outputStride, inputChannels: inputChannels)
    default: throw TorchError("unknown encoder '\(name)'; available: \(names.joined(separator: ", "))")
    }
  }
}
