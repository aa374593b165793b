import Foundation

/// Which segmentation network a derived artefact (decision samples, a decision
/// network) was measured against: its model name, where its weights came from, and a
/// fingerprint of the weights themselves, so that a run retrained in the same folder
/// is told apart.
public struct SegmentationIdentity: Sendable, Equatable, CustomStringConvertible {
  public let model: String
  public let source: String
  public let fingerprint: String

  public init(model: String, source: String, fingerprint: String) {
    (self.model, self.source, self.fingerprint) = (model, source, fingerprint)
  }

  /// The identity of `network`'s current weights (before any inference-only rewrite such
  /// as folding batch norm, which changes them).
  public init(model: String, source: String, network: Module) throws {
    self.init(model: model, source: source, fingerprint: try Self.fingerprint(network))
  }

  /// FNV-1a over the 32-bit words of every state-dict tensor (as float32) and its name,
  /// in registration order: cheap next to a forward pass, and any changed weight changes it.
  public static func fingerprint(_ module: Module) throws -> String {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    func mix(_ word: UInt32) {
      hash = (hash ^ UInt64(word)) &* 0x0000_0100_0000_01B3
    }
    for (name, tensor) in try module.stateDict() {
      for byte in name.utf8 { mix(UInt32(byte)) }
      for value in try tensor.to(.cpu).to(.float32).contiguous().toArray(Float.self) { mix(value.bitPattern) }
    }
    return String(format: "fnv1a64:%016llx", hash)
  }

  public var description: String { "\(model) from \(source) (\(fingerprint))" }

  var metadata: [String: String] {
    ["segmentation_model": model, "segmentation_source": source, "segmentation_fingerprint": fingerprint]
  }

  init?(metadata: [String: String]) {
    guard let model = metadata["segmentation_model"], let source = metadata["segmentation_source"],
          let fingerprint = metadata["segmentation_fingerprint"] else { return nil }
    self.init(model: model, source: source, fingerprint: fingerprint)
  }

  /// Refuses a decision network measured against another segmentation network.
  public static func check(decision: SegmentationIdentity?, decisionFile: String, segmentation: SegmentationIdentity) throws {
    guard let decision, decision.fingerprint != segmentation.fingerprint else { return }
    throw InferenceError("\(decisionFile) was trained on samples of \(decision), but the segmentation path here is \(segmentation): collect decision samples (`segkit dvs features`) and train the decision network with this segmentation network")
  }
}
