import Foundation
import SegKitNN

/// What a model name means, parsed once: the one place that reads a name's parts, so
/// that everything above asks the family instead of testing prefixes.
///
///     deeplabv3_resnet50          torchvision's model (its name, layout and checkpoints)
///     unet_resnet34, fcn8s_vgg16  a decoder over an encoder
///     osvos_vgg16, osvos_resnet18 OSVOS over an encoder (vgg16: the release's network)
///     maskrnn_vgg16               MaskRNN whose streams are OSVOS over that encoder
///     flownet2s, flownets_thin    a FlowNetS (frame pairs in, flow out)
public enum ModelFamily: Equatable, Sendable {
  case torchvision(String)
  case semantic(decoder: ModelZoo.DecoderKind, encoder: String)
  case osvos(encoder: String)
  case maskRNN(encoder: String)
  case flow(FlowNetS.Widths)

  /// The family of `name`, or nil when no model has that name.
  public init?(name: String) {
    if ModelZoo.torchvisionNames.contains(name) {
      self = .torchvision(name)
    } else if let widths = Self.flowWidths[name] {
      self = .flow(widths)
    } else if let encoder = Self.encoder(of: name, after: "osvos_") {
      self = .osvos(encoder: encoder)
    } else if let encoder = Self.encoder(of: name, after: "maskrnn_") {
      self = .maskRNN(encoder: encoder)
    } else {
      let parts = name.split(separator: "_", maxSplits: 1).map(String.init)
      guard parts.count == 2, let decoder = ModelZoo.DecoderKind(rawValue: parts[0]), EncoderRegistry.names.contains(parts[1])
      else { return nil }
      self = .semantic(decoder: decoder, encoder: parts[1])
    }
  }

  /// The family of `name`, or an error listing the names there are.
  public static func parse(_ name: String) throws -> ModelFamily {
    guard let family = ModelFamily(name: name) else { throw ModelZoo.unknownModel(name) }
    return family
  }

  /// The flow networks' names and widths: flownet2-pytorch's FlowNet2-S and DVSNet's thin FlowNetS.
  static let flowWidths: [String: FlowNetS.Widths] = ["flownet2s": .full, "flownets_thin": .thin]

  private static func encoder(of name: String, after prefix: String) -> String? {
    guard name.hasPrefix(prefix) else { return nil }
    let encoder = String(name.dropFirst(prefix.count))
    return EncoderRegistry.names.contains(encoder) ? encoder : nil
  }

  public var name: String {
    switch self {
    case .torchvision(let name): return name
    case .semantic(let decoder, let encoder): return "\(decoder.rawValue)_\(encoder)"
    case .osvos(let encoder): return "osvos_\(encoder)"
    case .maskRNN(let encoder): return "maskrnn_\(encoder)"
    case .flow(let widths): return Self.flowWidths.first { $0.value == widths }!.key
    }
  }

  public var isMaskRNN: Bool { if case .maskRNN = self { return true } else { return false } }
  public var isOSVOS: Bool { if case .osvos = self { return true } else { return false } }

  /// The OSVOS network a MaskRNN's streams are (`osvos_vgg16` for `maskrnn_vgg16`).
  public var maskRNNStreams: ModelFamily? { if case .maskRNN(let encoder) = self { return .osvos(encoder: encoder) } else { return nil } }

  /// A flow network's widths, nil for the other families.
  public var flowWidths: FlowNetS.Widths? { if case .flow(let widths) = self { return widths } else { return nil } }

  /// One output channel whatever is asked: the foreground networks.
  public var isForeground: Bool {
    switch self {
    case .osvos, .maskRNN: return true
    default: return false
    }
  }
}
