import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor

/// Where the video snippets come from.
struct SnippetArguments: ParsableArguments {
  @Option(help: "Cityscapes root with leftImg8bit_sequence/ and gtFine/ (or `segkit data synth --kind street`'s folder).")
  var cityscapes: String?

  @Option(help: "CamVid at 30 fps: a root with <split>/<sequence>/ frames and <split>annot/<sequence>/ labels (DVSNet's layout).")
  var camvid: String?

  @Option(help: "The split: train, val or test.")
  var split = "val"

  func validate() throws {
    guard (cityscapes == nil) != (camvid == nil) else { throw ValidationError("pass one of --cityscapes and --camvid") }
  }

  func dataset() throws -> VideoSnippets {
    if let camvid { return try VideoSnippets.camvid(root: URL(fileURLWithPath: camvid), split: split) }
    return try VideoSnippets.cityscapes(root: URL(fileURLWithPath: cityscapes ?? ""), split: split)
  }
}

/// A decision network with what it was trained for, and the file it came from.
struct LoadedDecision {
  let network: DecisionNetwork
  let info: DecisionNetworkFile.Info
  let file: String
}

/// How each region chooses its path.
struct PolicyArguments: ParsableArguments {
  @Option(help: "The decision network (OUT/decision.safetensors of `segkit dvs train-decision`); needed by target policies.")
  var decision: String?

  @Option(help: "fast, balanced or slow (targets 80, 90, 95), target:T, interval:K or every-frame.")
  var policy = "balanced"

  @Flag(help: "DVSNet's dynamic target: 1 lower after each segmentation step, 0.1 higher after each flow step.")
  var dynamic = false

  func decisionNetwork() throws -> LoadedDecision? {
    try decision.map { file in
      let (network, info) = try DecisionNetworkFile.readWithInfo(URL(fileURLWithPath: file))
      return LoadedDecision(network: network, info: info, file: file)
    }
  }

  /// --policy, checked against the decision network it needs.
  func chosen(decision network: LoadedDecision?) throws -> DynamicKeyFrameSegmenter.Policy {
    let chosen = try Self.parse(policy, dynamic: dynamic)
    if case .target = chosen, network == nil {
      throw ValidationError("--policy \(policy) decides by the decision network: pass --decision FILE")
    }
    return chosen
  }

  static func parse(_ text: String, dynamic: Bool) throws -> DynamicKeyFrameSegmenter.Policy {
    do { return try DynamicKeyFrameSegmenter.Policy.parse(text, dynamic: dynamic) } catch let error as InferenceError {
      throw ValidationError("--\(error.message)")
    }
  }
}
