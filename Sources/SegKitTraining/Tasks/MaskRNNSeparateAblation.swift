import Foundation

/// MaskRNN's ablation as the paper runs it (`segkit vos ablation --separate`): each
/// variant trained on its own from one parent and one recipe (`maskrnn_variant`
/// appearance, flow, streams, full), then its own readout segmented and scored as
/// `MaskRNNAblation` scores the parts of one jointly trained network.
public enum MaskRNNSeparateAblation {
  /// The variants in the table's order, each with the readout it is scored by.
  public static let variants: [(variant: TrainingConfig.MaskRNNVariant, readout: MaskRNNSegmenter.Readout)] = [
    (.appearance, .appearance), (.flow, .flow), (.streams, .streams), (.full, .full),
  ]

  /// What the table says of its rows.
  public static let training = "separately trained"

  /// The shared recipe: MaskRNN `model` on the evaluated DAVIS root (its `train_split`)
  /// from `parent`, under `file` and then `overrides` (`key=value`), validated.
  public static func recipe(
    file: URL?, overrides: [String], model: String, parent: URL, davis: URL, year: Int
  ) throws -> TrainingConfig {
    var defaults = TrainingConfig()
    defaults.task = .foreground
    defaults.model.name = model
    defaults.data.dataset = year == 2016 ? "davis2016" : "davis2017"
    defaults.data.datasetDir = davis.path
    defaults.initialization.initialCheckpoint = parent.path
    let config = try TrainingConfig.resolve(file: file, overrides: overrides, defaults: defaults)
    guard ModelFamily(name: config.model.name)?.isMaskRNN == true else {
      throw TrainingError("--separate trains MaskRNN's variants: 'model' \(config.model.name) is not a maskrnn_* model")
    }
    guard config.maskRNN.variant == .full else {
      throw TrainingError("'maskrnn_variant' is set by --separate for each variant; leave it out of the recipe")
    }
    guard config.maskRNN.localisation else {
      throw TrainingError("'localisation' must be true with --separate: the full variant is scored with its localiser")
    }
    return config
  }

  /// Trains each variant into `folder`/runs/<variant>/ and scores its readout into
  /// `folder`/<readout>/. `flow` gives the flows for a trained run folder (all variants
  /// share the recipe, so the first run's serves every one).
  public static func run(
    _ recipe: TrainingConfig, flow makeFlow: (URL) throws -> MaskRNNFlowSource, device: Device, on dataset: VideoDataset,
    singleObject: Bool, into folder: URL, console: TrainerConsole = .quiet, trained: (String, URL) -> Void = { _, _ in },
    finished: (MaskRNNAblation.Row) -> Void = { _ in }, shouldStop: @escaping () -> Bool = { false }
  ) throws -> (rows: [MaskRNNAblation.Row], flow: MaskRNNFlowSource) {
    guard case .maskRNN(let encoder) = ModelFamily(name: recipe.model.name) else {
      throw TrainingError("'model' \(recipe.model.name) is not a maskrnn_* model")
    }
    var rows: [MaskRNNAblation.Row] = []
    var flow: MaskRNNFlowSource?
    for (variant, readout) in variants {
      var config = recipe
      config.maskRNN.variant = variant
      let run = folder.appendingPathComponent("runs").appendingPathComponent(variant.rawValue)
      let trainer = try Trainer(config: config, runFolder: run, console: console)
      guard case .finished = try trainer.train(shouldStop: shouldStop) else { throw StoppedOnRequest() }
      trained(variant.rawValue, run)
      let weights = try StateDict.load(contentsOf: RunLayout(run).finalWeightsURL)
      let network = try MaskRNN.matching(weights, encoder: encoder)
      try network.load(weights)
      let source = try flow ?? makeFlow(run)
      flow = source
      if readout == .full && network.localiser == nil {
        throw TrainingError("the full variant has no localiser to score: the recipe sets 'localisation' false")
      }
      let parts = MaskRNNAblation.parts.filter { $0.readout == readout }
      rows += try MaskRNNAblation.run(
        network, flow: source, device: device, on: dataset, singleObject: singleObject, into: folder, parts: parts,
        finished: finished, shouldStop: shouldStop)
    }
    guard let flow else { throw TrainingError("no variant was trained") }
    return (rows, flow)
  }
}
