import Foundation

/// Builds the model that `segkit eval` and `segkit predict` run: from a model name
/// and a weight file, or from a run folder (its config.yaml and latest checkpoint).
public enum InferenceModel {
  /// A run folder's resolved configuration, read without writing to the folder.
  public static func runConfig(_ run: URL) throws -> TrainingConfig {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: run.path, isDirectory: &isDirectory), isDirectory.boolValue else {
      throw TrainingError("run folder \(run.path): no such folder")
    }
    let file = run.appendingPathComponent("config.yaml")
    guard FileManager.default.fileExists(atPath: file.path) else {
      throw TrainingError("\(run.path): not a run folder (no config.yaml)")
    }
    return try TrainingConfig.resolve(file: file)
  }

  /// The dataset format a name stands for: a `DatasetFormat` value or a training
  /// configuration's `dataset` name (pascal_voc, pascal_voc_aug, davis, …).
  public static func datasetFormat(named name: String) throws -> DatasetFormat {
    let key = name.lowercased().replacingOccurrences(of: "-", with: "_")
    let aliases: [String: DatasetFormat] = [
      "pascal_voc": .voc, "pascal": .voc, "voc2012": .voc, "pascal_voc_aug": .vocAug, "vocaug": .vocAug,
      "ade": .ade20k, "davis": .davis2017,
    ]
    guard let format = DatasetFormat(rawValue: key) ?? aliases[key] else {
      let known = DatasetFormat.allCases.map(\.rawValue).joined(separator: ", ")
      throw TrainingError("unknown dataset '\(name)': expected one of \(known) (or pascal_voc, pascal_voc_aug)")
    }
    return format
  }

  /// The newest readable checkpoint of a run; unreadable ones are skipped with a warning.
  public static func latestCheckpoint(_ run: URL, warning: (String) -> Void = { _ in }) throws -> URL {
    let store = CheckpointStore(directory: run.appendingPathComponent("checkpoints"))
    guard let latest = store.latest(warning: warning) else {
      throw TrainingError("\(store.directory.path): no readable checkpoint (step-*.safetensors) in this run")
    }
    return latest.url
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

  /// `name` with `classes` classes and, when given, the run's architecture settings
  /// and the weights. The auxiliary head is built when a whole-model checkpoint
  /// has one, so that any such checkpoint loads whatever the defaults.
  public static func build(
    _ name: String, classes: Int, config: TrainingConfig? = nil, weights: StateDict? = nil, from url: URL? = nil
  ) throws -> any SegmentationNetwork {
    guard classes >= 1 else { throw TrainingError("the number of classes must be at least 1, got \(classes)") }
    let run = config?.model == name ? config : nil
    var auxiliaryHead = run?.auxiliaryHead
    if let weights, weights.names.contains(where: { $0.hasPrefix("backbone.") }) {
      auxiliaryHead = weights.names.contains { $0.hasPrefix("aux_classifier.") }
    }
    let model = try ModelZoo.make(
      name, classes: classes, outputStride: run?.outputStride, auxiliaryHead: auxiliaryHead,
      atrousRates: run?.atrousRates, separable: run?.separableConv ?? false)
    if let weights {
      do {
        try ModelZoo.loadWeights(weights, into: model)
      } catch {
        throw TrainingError("\(url?.path ?? "weights"): does not fit \(name) with \(classes) classes: \(error)")
      }
    }
    return model
  }
}
