import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor
import SegKitTraining

/// `segkit vos ablation`: what each part of a MaskRNN buys.
struct VOSAblation: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ablation",
    abstract: "What each part of a MaskRNN buys: J&F of the appearance stream alone, the flow stream alone, both, and both with the localiser.",
    discussion: """
      Segments the DAVIS split four times with one trained MaskRNN (a `segkit vos train` \
      run folder or its weights), each time carrying a different part's mask from frame to \
      frame: the appearance stream's logits, the flow stream's, the two fused, the fused \
      logits gated by the localiser's box (MaskRNN itself; skipped when the weights have no \
      localiser). Each stream is trained on its own loss beside the fused one, so each is \
      a segmenter on its own. No first-frame fine-tuning. Writes <out>/<part>/ (the DAVIS \
      results layout, scored as `segkit vos eval` scores it) and <out>/ablation.csv, and \
      prints the table. First it measures what the flow carries: J of each annotated mask \
      warped to the next frame by the flow, and left unwarped (<out>/flow-warp.csv); \
      <out>/ablation.json holds both, unrounded.

      --separate follows the paper's protocol instead: each variant (appearance stream, flow \
      stream, both streams fused, full MaskRNN) is trained on its own from --parent (an \
      OSVOS or MaskRNN parent) with one recipe (--config, then --set; model --model, \
      dataset the --davis root's train split), into <out>/runs/<variant>/ \
      (maskrnn_variant), and each is scored on its own readout. The table gets a Training \
      column saying "separately trained".
      """)

  @Option(help: "The MaskRNN: a run folder (its model and latest checkpoint) or a weight file (with --model); with --separate the parent every variant starts from.")
  var parent: String

  @Option(help: "The model when --parent is a weight file; with --separate the MaskRNN the variants train.")
  var model = "maskrnn_vgg16"

  @Flag(help: "Train each variant on its own from --parent and score each one's output (the paper's protocol).")
  var separate = false

  @Option(help: ArgumentHelp("With --separate: the training recipe's YAML file.", valueName: "file.yaml"))
  var config: String?

  @Option(name: .customLong("set"), help: ArgumentHelp("With --separate: one recipe setting (repeatable; `segkit train --help`).", valueName: "key=value"))
  var settings: [String] = []

  @OptionGroup var davis: DAVISArguments

  @Option(help: "The output folder.")
  var out: String

  @OptionGroup var device: DeviceArgument

  @OptionGroup var flowSource: MaskRNNFlowArgument

  func validate() throws {
    guard davis.davis != nil else { throw ValidationError("--davis ROOT and --year 2016|2017 are required") }
    guard separate || (config == nil && settings.isEmpty) else { throw ValidationError("--config and --set are for --separate") }
  }

  func run() throws {
    Torch.keepFreedMemory()
    let dataset = try davis.dataset()
    let folder = URL(fileURLWithPath: out)
    try createFolder(folder)
    let chosenDevice = try device.resolved()
    let stop = Interrupt.install(message: "stopping after this frame (Ctrl-C again quits at once)")
    let singleObject = davis.year == 2016
    let finished = { (row: MaskRNNAblation.Row) in
      print("\(row.name): J&F \(String(format: "%.4f", row.jAndF))  J \(String(format: "%.4f", row.j))  "
        + "F \(String(format: "%.4f", row.f))  (\(String(format: "%.1f s", row.seconds)))")
      fflush(stdout)
    }
    // What the flow carries, before the parts when the flows are known first (separately trained variants: after).
    let diagnose = { (flow: MaskRNNFlowSource) throws -> MaskRNNAblation.WarpDiagnostic in
      let warp = try MaskRNNAblation.warpDiagnostic(on: dataset, flow: flow, singleObject: singleObject)
      print(String(format: "previous annotated mask against the current one: J %.4f warped by the flow, %.4f unwarped (%d sequences)",
                   warp.warpedJ, warp.unwarpedJ, warp.sequences))
      try write(Data(MaskRNNAblation.csv(warp).utf8), to: folder.appendingPathComponent("flow-warp.csv"))
      return warp
    }
    let rows: [MaskRNNAblation.Row], warp: MaskRNNAblation.WarpDiagnostic
    do {
      if separate {
        let (_, weights) = try parentWeights(parent, model: model)
        let root = URL(fileURLWithPath: davis.davis ?? "")
        let recipe: TrainingConfig
        do {
          recipe = try MaskRNNSeparateAblation.recipe(file: config.map { URL(fileURLWithPath: $0) }, overrides: settings, model: model,
                                                      parent: weights, davis: root, year: davis.year ?? 2017)
        } catch let error as TrainingError { throw CommandError("--separate: \(error.message)") }
        print("DAVIS \(davis.year ?? 0) \(davis.split): \(dataset.sequences.count) sequences, \(recipe.model.name) variants trained separately")
        let flow: MaskRNNFlowSource
        (rows, flow) = try MaskRNNSeparateAblation.run(
          recipe, flow: { try flowSource.source(model: recipe.model.name, parent: $0.path, davis: davis.davis, device: chosenDevice) },
          device: chosenDevice, on: dataset, singleObject: singleObject, into: folder, console: .lines,
          trained: { print("\($0) trained: \($1.path)") }, finished: finished, shouldStop: { stop.requested })
        warp = try diagnose(flow)
      } else {
        let (modelName, weights) = try parentWeights(parent, model: model)
        guard case .maskRNN(let encoder) = ModelFamily(name: modelName) else {
          throw ValidationError("--parent \(parent): \(modelName) is not a MaskRNN (maskrnn_* models: \(ModelZoo.maskRNNNames.joined(separator: ", ")))")
        }
        let state = try ModelLoader.readWeights(weights)
        let network = try MaskRNN.matching(state, encoder: encoder)
        do { try network.load(state) } catch {
          throw CommandError("--parent \(parent): the weights do not fit \(modelName): \(error)")
        }
        let flow = try flowSource.source(model: modelName, parent: parent, davis: davis.davis, device: chosenDevice)
        print("DAVIS \(davis.year ?? 0) \(davis.split): \(dataset.sequences.count) sequences, \(modelName)")
        warp = try diagnose(flow)
        rows = try MaskRNNAblation.run(
          network, flow: flow, device: chosenDevice, on: dataset, singleObject: singleObject, into: folder,
          skipped: { print("\($0): skipped, the weights have no localiser") }, finished: finished, shouldStop: { stop.requested })
      }
    } catch is StoppedOnRequest {
      print("stopped")
      throw ExitCode(130)
    } catch let error as TrainingError {
      throw CommandError(error.message)
    }
    let training = separate ? MaskRNNSeparateAblation.training : nil
    let csvURL = folder.appendingPathComponent("ablation.csv")
    try write(Data(MaskRNNAblation.csv(rows, training: training).utf8), to: csvURL)
    try write(MaskRNNAblation.json(rows, diagnostic: warp, training: training), to: folder.appendingPathComponent("ablation.json"))
    print("table: \(csvURL.path)")
  }
}
