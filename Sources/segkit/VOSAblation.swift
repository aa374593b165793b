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
      prints the table.
      """)

  @Option(help: "The MaskRNN: a run folder (its model and latest checkpoint) or a weight file (with --model).")
  var parent: String

  @Option(help: "The model when --parent is a weight file.")
  var model = "maskrnn_vgg16"

  @OptionGroup var davis: DAVISArguments

  @Option(help: "The output folder.")
  var out: String

  @Option(help: "Device: auto (the first CUDA device, else the CPU), cpu, cuda, cuda:N or mps.")
  var device = "auto"

  func validate() throws {
    guard davis.davis != nil else { throw ValidationError("--davis ROOT and --year 2016|2017 are required") }
  }

  /// The table's rows, in order.
  static let parts: [(readout: MaskRNNSegmenter.Readout, name: String)] = [
    (.appearance, "appearance stream"), (.flow, "flow stream"), (.streams, "both streams"), (.full, "both + localisation"),
  ]

  func run() throws {
    Torch.keepFreedMemory()
    let (modelName, weights) = try parentWeights(parent, model: model)
    guard ModelZoo.maskRNNNames.contains(modelName) else {
      throw ValidationError("--parent \(parent): \(modelName) is not a MaskRNN (maskrnn_* models: \(ModelZoo.maskRNNNames.joined(separator: ", ")))")
    }
    let state = try ModelLoader.readWeights(weights)
    let network = try MaskRNN.matching(state, encoder: String(modelName.dropFirst("maskrnn_".count)))
    do { try network.load(state) } catch {
      throw CommandError("--parent \(parent): the weights do not fit \(modelName): \(error)")
    }
    let dataset = try davis.dataset()
    let folder = URL(fileURLWithPath: out)
    try createFolder(folder)
    let deviceChoice = try resolveDevice(device)
    let flow = try maskRNNFlow(parent: parent, device: deviceChoice)
    let stop = Interrupt.install(message: "stopping after this frame (Ctrl-C again quits at once)")
    var rows: [(name: String, report: DAVISEvaluation.Report)] = []
    print("DAVIS \(davis.year ?? 0) \(davis.split): \(dataset.sequences.count) sequences, \(modelName)")
    for part in Self.parts {
      if part.readout == .full && network.localiser == nil {
        print("\(part.name): skipped, the weights have no localiser")
        continue
      }
      let partFolder = folder.appendingPathComponent(part.readout.rawValue)
      let segmentation = DAVISSegmentation(makeSegmenter: {
        MaskRNNObjectsSegmenter(model: network, device: deviceChoice, flow: flow, readout: part.readout)
      })
      let start = Date()
      do {
        for sequence in dataset.sequences {
          _ = try segmentation.segment(sequence, singleObject: davis.year == 2016, into: partFolder, shouldStop: { stop.requested })
        }
      } catch let error as TrainingError where error == .stopped {
        print("stopped during \(part.name)")
        throw ExitCode(130)
      }
      let report = try DAVISEvaluation.run(results: partFolder, dataset: dataset)
      rows.append((part.name, report))
      let global = report.global
      print("\(part.name): J&F \(String(format: "%.4f", global[0].value))  J \(String(format: "%.4f", global[1].value))  "
        + "F \(String(format: "%.4f", global[4].value))  (\(String(format: "%.1f s", Date().timeIntervalSince(start))))")
      fflush(stdout)
    }
    let csv = "Part,J&F-Mean,J-Mean,F-Mean\n" + rows.map { row in
      let global = row.report.global
      return "\(row.name)," + String(format: "%.4f,%.4f,%.4f", global[0].value, global[1].value, global[4].value)
    }.joined(separator: "\n") + "\n"
    let csvURL = folder.appendingPathComponent("ablation.csv")
    do { try AtomicFile.write(Data(csv.utf8), to: csvURL) } catch {
      throw CommandError("\(csvURL.path): cannot be written (\(error.localizedDescription))")
    }
    print("table: \(csvURL.path)")
  }
}
