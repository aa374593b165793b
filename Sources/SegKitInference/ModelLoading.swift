import Foundation

/// A model built and loaded for inference, with what it is.
public struct LoadedModel {
  public let network: any SegmentationNetwork
  public let manifest: ModelManifest
  /// The weight file loaded, if any.
  public let weights: URL?
}

/// Builds the model that evaluation, prediction, export and serving run: from a
/// run folder (its manifest and latest checkpoint) or from a model name and a
/// weight file. One rule decides the number of classes, in this order: the
/// caller's, the run's manifest, what the checkpoint was trained for, the
/// caller's fallback (a dataset's class count), 21 (Pascal VOC, torchvision's).
public enum ModelLoader {
  /// The model of a run, with its latest readable checkpoint unless `weights` names another file.
  public static func load(
    run: RunLayout, weights: URL? = nil, classes: Int? = nil, warning: (String) -> Void = { _ in }
  ) throws -> LoadedModel {
    var manifest = try run.manifest()
    let url = try weights ?? run.latestCheckpointURL(warning: warning)
    let stored = try readWeights(url)
    if let classes, classes != manifest.classes {
      throw InferenceError("--classes \(classes) differs from the run's \(manifest.classes) classes (\(run.manifestURL.path))")
    }
    manifest.classes = classes ?? manifest.classes
    return LoadedModel(network: try build(manifest, weights: stored, from: url), manifest: manifest, weights: url)
  }

  /// `name` with `weights` (none: freshly initialised) and the network's own input
  /// normalisation; a one-channel network is a foreground model.
  public static func load(name: String, weights: URL?, classes: Int? = nil, fallbackClasses: Int? = nil) throws -> LoadedModel {
    if let classes, classes < 1 { throw InferenceError("the number of classes must be at least 1, got \(classes)") }
    let stored = try weights.map { try readWeights($0) }
    let fixed = ModelZoo.fixedClasses(of: name)
    let trained = fixed == nil ? try stored.flatMap { try trainedClasses($0, model: name) } : nil
    let count = classes ?? fixed ?? trained ?? fallbackClasses ?? 21
    guard count <= 256 else {
      throw InferenceError("\(name) with \(count) classes: label maps hold 8-bit ids, so at most 256 classes")
    }
    var manifest = ModelManifest(model: name, task: count == 1 ? .foreground : .semantic, classes: count)
    let network = try build(manifest, weights: stored, from: weights)
    manifest.normalization = network.inputNormalization
    return LoadedModel(network: network, manifest: manifest, weights: weights)
  }

  /// The model weights of a file: a whole model's or an encoder's state dict
  /// (.pth, .safetensors), or a SegKit training checkpoint, whose optimizer state
  /// (the "optimizer." entries, a prefix model weights never use) is left out.
  public static func readWeights(_ url: URL) throws -> StateDict {
    let all = try StateDict.load(contentsOf: url)
    guard all.names.contains(where: { $0.hasPrefix(Checkpoint.optimizerPrefix) }) else { return all }
    return try StateDict(all.filter { !$0.name.hasPrefix(Checkpoint.optimizerPrefix) }.map { ($0.name, $0.tensor) })
  }

  /// The number of classes a whole-model checkpoint was trained for; nil when it
  /// holds no classifier (an encoder checkpoint).
  public static func trainedClasses(_ weights: StateDict, model name: String) throws -> Int? {
    guard weights.names.contains(where: { $0.hasPrefix("classifier.") }) else { return nil }
    return try classCount(of: weights, model: name) ?? 21
  }

  /// The manifest's model, with `weights` loaded when given. The auxiliary head is
  /// built when a whole-model checkpoint has one, so that any such checkpoint loads
  /// whatever the defaults.
  public static func build(_ manifest: ModelManifest, weights: StateDict? = nil, from url: URL? = nil) throws -> any SegmentationNetwork {
    guard manifest.classes >= 1 else {
      throw InferenceError("the number of classes must be at least 1, got \(manifest.classes)")
    }
    var auxiliaryHead = manifest.auxiliaryHead
    if ModelZoo.fixedClasses(of: manifest.model) == nil, let weights,
       weights.names.contains(where: { $0.hasPrefix("backbone.") }) {
      auxiliaryHead = weights.names.contains { $0.hasPrefix("aux_classifier.") }
    }
    let model = try ModelZoo.make(
      manifest.model, classes: manifest.classes, outputStride: manifest.outputStride, auxiliaryHead: auxiliaryHead,
      atrousRates: manifest.atrousRates, separable: manifest.separable)
    if let weights {
      do {
        try ModelZoo.loadWeights(weights, into: model)
      } catch {
        throw InferenceError("\(url?.path ?? "weights"): does not fit \(manifest.model) with \(manifest.classes) classes: \(error)")
      }
    }
    return model
  }

  /// The number of classes a full-model checkpoint was trained for: built with
  /// 21 classes, the model's classifier differs from the checkpoint's only along
  /// the class dimension, which gives the count. Nil when the checkpoint holds no
  /// classifier (an encoder checkpoint) or agrees with 21 classes.
  public static func classCount(of checkpoint: StateDict, model name: String) throws -> Int? {
    let reference = 21
    for (key, tensor) in try ModelZoo.make(name, classes: reference).stateDict() where key.hasPrefix("classifier.") {
      guard let stored = checkpoint[key], stored.rank == tensor.rank, stored.shape != tensor.shape else { continue }
      if let d = tensor.shape.indices.first(where: { tensor.shape[$0] == reference && stored.shape[$0] != reference }) {
        return stored.shape[d]
      }
    }
    return nil
  }
}
