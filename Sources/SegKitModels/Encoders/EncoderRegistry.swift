import SegKitNN

/// An encoder type that builds the encoders of some names (`resnet18`, `resnet34`, ...).
public protocol EncoderFamily {
  /// The names this family builds, as they appear in model names (`DECODER_ENCODER`).
  static var names: [String] { get }
  /// Builds `name` at `outputStride` (32, 16 or 8) for `inputChannels` input
  /// channels; nil if `name` is not one of `names`.
  static func make(_ name: String, outputStride: Int, inputChannels: Int) throws -> (any Encoder)?
}

/// Encoders by name: each family lists its own names in its file.
public enum EncoderRegistry {
  /// The families, in the order `segkit models` lists their names.
  public static let families: [any EncoderFamily.Type] = [
    ResNet.self, MobileNetV2.self, MobileNetV3Large.self, VGG.self, GoogLeNet.self, Xception65.self,
  ]

  /// Every encoder name, in the order `segkit models` lists them.
  public static let names = families.flatMap { $0.names }

  /// Builds the encoder `name` at `outputStride` (32, 16 or 8) for `inputChannels` input channels.
  public static func make(_ name: String, outputStride: Int = 32, inputChannels: Int = 3) throws -> any Encoder {
    for family in families {
      let encoder = try family.make(name, outputStride: outputStride, inputChannels: inputChannels)
      if let encoder { return encoder }
    }
    throw ModelError("unknown encoder '\(name)'; available: \(names.joined(separator: ", "))")
  }
}
