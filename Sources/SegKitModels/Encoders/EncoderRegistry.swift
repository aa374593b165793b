import SegKitNN

/// Encoders by name, as they appear in model names (`DECODER_ENCODER`).
public enum EncoderRegistry {
  /// Every encoder name, in the order `segkit models` lists them.
  public static let names = ["resnet18", "resnet34", "resnet50", "resnet101"]

  /// Builds the encoder `name` at `outputStride` (32, 16 or 8) for `inputChannels` input channels.
  public static func make(_ name: String, outputStride: Int = 32, inputChannels: Int = 3) throws -> any Encoder {
    switch name {
    case "resnet18": return try ResNet(depth: 18, outputStride: outputStride, inputChannels: inputChannels)
    case "resnet34": return try ResNet(depth: 34, outputStride: outputStride, inputChannels: inputChannels)
    case "resnet50": return try ResNet(depth: 50, outputStride: outputStride, inputChannels: inputChannels)
    case "resnet101": return try ResNet(depth: 101, outputStride: outputStride, inputChannels: inputChannels)
    default: throw TorchError("unknown encoder '\(name)'; available: \(names.joined(separator: ", "))")
    }
  }
}
