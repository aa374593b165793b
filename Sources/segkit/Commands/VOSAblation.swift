import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor

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
      """)

  @Option(help: "The MaskRNN: a run folder (its model and latest checkpoint) or a weight file (with --model).")
  var parent: String

  @Option(help: "The model when --parent is a weight file.")
  var model = "maskrnn_vgg16"

  @OptionGroup var davis: DAVISArguments

  @Option(help: "The output folder.")
  var out: String

  @OptionGroup var device: DeviceArgument

  @OptionGroup var flowSource: MaskRNNFlowArgument

  func validate() throws {
    guard davis.davis != nil else { throw ValidationError("--davis ROOT and --year 2016|2017 are required") }
  }

  func run() throws {
    Torch.keepFreedMemory()
    let (modelName, weights) = try parentWeights(parent, model: model)
    guard case .maskRNN(let encoder) = ModelFamily(name: modelName) else {
      throw ValidationError("--parent \(parent): \(modelName) is not a MaskRNN (maskrnn_* models: \(ModelZoo.maskRNNNames.joined(separator: ", ")))")
    }
    let state = try ModelLoader.readWeights(weights)
    let network = try MaskRNN.matching(state, encoder: encoder)
    do { try network.load(state) } catch {
      throw CommandError("--parent \(parent): the weights do not fit \(modelName): \(error)")
    }
    let dataset = try davis.dataset()
    let folder = URL(fileURLWithPath: out)
    try createFolder(folder)
    let chosenDevice = try device.resolved()
    let flow = try flowSource.source(model: modelName, parent: parent, davis: davis.davis, device: chosenDevice)
    let stop = Interrupt.install(message: "stopping after this frame (Ctrl-C again quits at once)")
    print("DAVIS \(davis.year ?? 0) \(davis.split): \(dataset.sequences.count) sequences, \(modelName)")
    let warp = try MaskRNNAblation.warpDiagnostic(on: dataset, flow: flow, singleObject: davis.year == 2016)
    print(String(format: "previous annotated mask against the current one: J %.4f warped by the flow, %.4f unwarped (%d sequences)",
                 warp.warpedJ, warp.unwarpedJ, warp.sequences))
    try write(Data(MaskRNNAblation.csv(warp).utf8), to: folder.appendingPathComponent("flow-warp.csv"))
    let rows: [MaskRNNAblation.Row]
    do {
      rows = try MaskRNNAblation.run(
        network, flow: flow, device: chosenDevice, on: dataset, singleObject: davis.year == 2016, into: folder,
        skipped: { print("\($0): skipped, the weights have no localiser") },
        finished: { row in
          print("\(row.name): J&F \(String(format: "%.4f", row.jAndF))  J \(String(format: "%.4f", row.j))  "
            + "F \(String(format: "%.4f", row.f))  (\(String(format: "%.1f s", row.seconds)))")
          fflush(stdout)
        }, shouldStop: { stop.requested })
    } catch is StoppedOnRequest {
      print("stopped")
      throw ExitCode(130)
    }
    let csvURL = folder.appendingPathComponent("ablation.csv")
    try write(Data(MaskRNNAblation.csv(rows).utf8), to: csvURL)
    try write(MaskRNNAblation.json(rows, diagnostic: warp), to: folder.appendingPathComponent("ablation.json"))
    print("table: \(csvURL.path)")
  }
}
