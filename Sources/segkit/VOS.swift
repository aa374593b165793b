import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor
import SegKitTraining

/// `segkit vos …`: semi-supervised video object segmentation.
struct VOSCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vos",
    abstract: "Video object segmentation: parent training, one-shot segmentation of DAVIS sequences, DAVIS evaluation.",
    subcommands: [VOSTrain.self, VOSSegment.self, VOSEval.self, VOSAblation.self]
  )
}

struct VOSTrain: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Train a parent network for one-shot video object segmentation (OSVOS's offline stage) in a run folder.",
    discussion: """
      `segkit train` with task foreground, model osvos_vgg16 and dataset davis2016 as the \
      defaults under the config file: every annotated object of every frame is foreground, \
      the loss is OSVOS's class-balanced sigmoid cross-entropy on the fuse and the side \
      outputs (side_loss_weight, side_loss_schedule), validation reports the foreground IoU. \
      DAVIS 2017 (dataset: davis2017) trains on its objects merged into one foreground. \
      Ready configs: configs/osvos-parent-pytorch.yaml, configs/osvos-parent-tensorflow.yaml \
      and configs/osvos-parent-mindspore.yaml (the three releases' recipes), \
      configs/osvos-parent-cpu.yaml (a small encoder and crop for a CPU). The run folder \
      is what `segkit vos segment --parent` takes. Ctrl-C checkpoints; --resume continues \
      exactly. Settings: `segkit train --help`.
      """)

  @OptionGroup var arguments: TrainingArguments

  func run() throws {
    var defaults = TrainingConfig()
    defaults.task = .foreground
    defaults.model.name = "osvos_vgg16"
    defaults.data.dataset = "davis2016"
    try arguments.train(defaults: defaults, command: "segkit vos train")
  }
}

struct VOSEval: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Score a results folder on DAVIS 2016 or 2017 as davis2017-evaluation does: J and F mean, recall, decay; J&F.",
    discussion: """
      RESULTS holds one folder per sequence with a PNG per annotated frame, named like the \
      annotations: palette indices of object ids for 2017, 0/255 (any non-zero) for 2016. \
      Every frame but the first and the last counts; each object of each sequence weighs the \
      same; F's boundary tolerance is 0.008 of the image diagonal; void (255) in the 2017 \
      annotations is background. Writes global_results-SPLIT.csv and \
      per-sequence_results-SPLIT.csv (davis2017-evaluation's columns, 3 decimals) into RESULTS, \
      and with --json the unrounded values. Sequences of 256 frames or more get a correct \
      decay (the official code's 8-bit frame index wraps there).
      """)

  @Option(help: "The results folder: <sequence>/<frame>.png.")
  var results: String

  @OptionGroup var davis: DAVISArguments

  @Option(help: "Also write the scores as JSON: {\"global\": {…}, \"objects\": [{\"sequence\", \"object\", \"J-Mean\", …}]}.")
  var json: String?

  func validate() throws {
    guard davis.davis != nil else { throw ValidationError("--davis ROOT and --year 2016|2017 are required") }
  }

  func run() throws {
    let resultsURL = URL(fileURLWithPath: results)
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: resultsURL.path, isDirectory: &isDirectory), isDirectory.boolValue else {
      throw ValidationError("--results \(results): no such folder")
    }
    let jsonURL = try json.map { try writableFile($0, option: "--json") }
    let dataset = try davis.dataset()
    let start = Date()
    let report = try DAVISEvaluation.run(results: resultsURL, dataset: dataset)
    let seconds = Date().timeIntervalSince(start)

    try write(report.globalCSV, to: resultsURL.appendingPathComponent("global_results-\(davis.split).csv"))
    try write(report.perSequenceCSV, to: resultsURL.appendingPathComponent("per-sequence_results-\(davis.split).csv"))
    if let jsonURL {
      do { try AtomicFile.write(report.json(), to: jsonURL) } catch {
        throw CommandError("\(jsonURL.path): cannot be written (\(error.localizedDescription))")
      }
    }
    print("DAVIS \(davis.year ?? 0) \(davis.split): \(dataset.sequences.count) sequences, \(report.objects.count) objects, "
      + String(format: "%.1f s", seconds))
    print(report.global.map { "\($0.name) " + String(format: "%.4f", $0.value) }.joined(separator: "  "))
    print("J&F: " + String(format: "%.4f", report.global[0].value))
  }

  private func write(_ text: String, to url: URL) throws {
    do { try AtomicFile.write(Data(text.utf8), to: url) } catch {
      throw CommandError("\(url.path): cannot be written (\(error.localizedDescription))")
    }
  }
}

struct VOSSegment: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "segment",
    abstract: "Segment DAVIS sequences, or a video with its first frame's mask: OSVOS's one-shot fine-tuning or MaskRNN's recurrence.",
    discussion: """
      OSVOS parents (osvos_* models): each object of the first mask gets its own copy of the \
      parent, fine-tuned on the first frame and that object's mask. MaskRNN runs \
      (maskrnn_* models, trained by `segkit vos train`): each object's mask is carried from \
      frame to frame, warped by DIS flow and corrected by the network; with --steps, each \
      object first gets a copy fine-tuned on the first frame (its previous mask the first \
      mask spoilt afresh each step). Either way every frame takes per pixel the object of \
      highest probability above 1/2.

      DAVIS (--davis ROOT --year 2016|2017): writes the DAVIS results layout into --out \
      (2016: 0/255 PNGs; 2017: palette PNGs of object ids, named like the annotations) and \
      timing.json (fine-tuning seconds and frames per second per sequence). Sequences \
      already complete in --out are skipped unless --overwrite; Ctrl-C stops after the \
      current frame and keeps the finished sequences. Score the folder with `segkit vos eval`.

      A video (--video FILE --first-mask PNG): the mask holds object ids (palette indices; \
      a 0/255 mask is one object). Writes <out>/<stem>/NNNNNN.png (palette PNGs of object \
      ids, one per frame) and <out>/<stem>_overlay.mp4; an earlier result there is kept \
      unless --overwrite. --out may not lie inside the DAVIS dataset being read.
      """)

  @Option(help: "The parent: a run folder (its model and latest checkpoint) or a weight file (with --model).")
  var parent: String

  @Option(help: "The parent's model when --parent is a weight file.")
  var model = "osvos_vgg16"

  @OptionGroup var davis: DAVISArguments

  @Option(help: "Only these DAVIS sequences, comma-separated.")
  var sequences: String?

  @Option(help: "A video file to segment instead of DAVIS (with --first-mask).")
  var video: String?

  @Option(help: "The video's first-frame mask: a PNG of object ids, the video's size.")
  var firstMask: String?

  @Option(help: "The output folder.")
  var out: String

  @Option(help: "Fine-tuning steps per object (OSVOS: 100 unless given; MaskRNN: no fine-tuning unless given).")
  var steps: Int?

  @Option(help: "Fine-tuning learning rate.")
  var learningRate = 1e-4

  @Option(help: "Fine-tuning optimizer: adam, or sgd (momentum 0.9).")
  var optimizer = "adam"

  @Option(help: "Differently augmented copies of the first frame whose gradients make one step.")
  var gradientAccumulation = 1

  @Option(help: "The balanced loss's normalisation: per_pixel (mean), per_image or sum (the references', with SGD at 1e-8).")
  var lossNormalization = "per_pixel"

  @Option(help: "Fine-tuning weight decay.")
  var weightDecay = 0.0

  @Flag(help: "OSVOS's per-layer learning rates (biases ×2, side scores ×0.1, fuse ×0.01, no decay on biases).")
  var referenceLearningRates = false

  @Option(help: "Device: auto (the first CUDA device, else the CPU), cpu, cuda, cuda:N or mps.")
  var device = "auto"

  @Option(help: "Arithmetic of the segmenting (fine-tuning is fp32): fp32 (exact, the default), bf16, or int8 (OSVOS; calibrated on each object's first frame).")
  var precision = "fp32"

  @Flag(help: "Segment sequences whose results are already complete again; replace a video's earlier masks and overlay video.")
  var overwrite = false

  @Flag(help: "Print a line per sequence even on a terminal (no progress bar).")
  var plain = false

  func validate() throws {
    guard steps ?? 1 >= 1, learningRate > 0, learningRate.isFinite else {
      throw ValidationError("--steps must be at least 1 and --learning-rate positive")
    }
    guard InferencePrecision(rawValue: precision) != nil else {
      throw ValidationError("--precision must be fp32, bf16 or int8, got '\(precision)'")
    }
    guard FineTuningSettings.OptimizerKind(rawValue: optimizer) != nil else {
      throw ValidationError("--optimizer must be adam or sgd, not '\(optimizer)'")
    }
    guard TrainingConfig.BalancedLossNormalization(rawValue: lossNormalization) != nil else {
      throw ValidationError("--loss-normalization must be per_pixel, per_image or sum, not '\(lossNormalization)'")
    }
    guard gradientAccumulation >= 1, weightDecay >= 0, weightDecay.isFinite else {
      throw ValidationError("--gradient-accumulation must be at least 1 and --weight-decay non-negative")
    }
    switch (davis.davis, video) {
    case (nil, nil): throw ValidationError("give --davis ROOT --year 2016|2017, or --video FILE --first-mask PNG")
    case (.some, .some): throw ValidationError("--davis and --video exclude each other: segment one or the other")
    case (nil, .some):
      guard firstMask != nil else { throw ValidationError("--video needs --first-mask, the first frame's object mask") }
      guard sequences == nil else { throw ValidationError("--sequences is for --davis") }
    case (.some, nil):
      guard firstMask == nil else { throw ValidationError("--first-mask is for --video; DAVIS sequences bring their own") }
    }
  }

  func run() throws {
    Torch.keepFreedMemory()
    var settings = FineTuningSettings()
    (settings.steps, settings.learningRate, settings.device) = (steps ?? 100, learningRate, try resolveDevice(device))
    settings.optimizer = FineTuningSettings.OptimizerKind(rawValue: optimizer) ?? .adam
    settings.gradientAccumulation = gradientAccumulation
    settings.precision = InferencePrecision(rawValue: precision) ?? .fp32
    settings.normalization = TrainingConfig.BalancedLossNormalization(rawValue: lossNormalization)?.normalization ?? .perPixel
    (settings.weightDecay, settings.referenceLearningRates) = (weightDecay, referenceLearningRates)
    let (modelName, weights) = try parentWeights(parent, model: model)
    let parentState = try ModelLoader.readWeights(weights)
    let folder = URL(fileURLWithPath: out)
    if let video, !overwrite, let earlier = PredictionWriter.earlierResult(of: URL(fileURLWithPath: video), in: folder, frames: true) {
      throw ValidationError("\(earlier.path) exists: --overwrite replaces it")
    }
    if let root = davis.davis, OutputFolder.isInside(folder, URL(fileURLWithPath: root)) {
      throw ValidationError("--out \(out) is inside the DAVIS dataset being read (\(root)): results there would mix with its annotations")
    }
    try createFolder(folder)
    let stop = Interrupt.install(message: "stopping after this frame; finished sequences are kept (Ctrl-C again quits at once)")
    // A MaskRNN run segments recurrently; any other parent is fine-tuned per object (OSVOS).
    let makeSegmenter: () throws -> any SequenceSegmenter
    if ModelZoo.maskRNNNames.contains(modelName) {
      // Its fusion and localiser as the weights have them.
      let maskRNN = try MaskRNN.matching(parentState, encoder: String(modelName.dropFirst("maskrnn_".count)))
      do { try maskRNN.load(parentState) } catch {
        throw CommandError("--parent \(parent): the weights do not fit \(modelName): \(error)")
      }
      let fineTune = steps != nil
      guard settings.precision != .int8 else { throw ValidationError("--precision int8 is for OSVOS parents; MaskRNN runs in fp32 or bf16") }
      let flow = try maskRNNFlow(parent: parent, device: settings.device)
      makeSegmenter = {
        let segmenter = MaskRNNObjectsSegmenter(model: maskRNN, device: settings.device, flow: flow, precision: settings.precision)
        if fineTune {
          segmenter.prepare = { _, frame, object in
            guard let tuned = try OneShotSegmenter.fineTunedCopy(
              modelName: modelName, parent: parentState, firstFrame: frame, object: object, settings: settings,
              shouldStop: { stop.requested }) as? MaskRNN
            else { throw CommandError("\(modelName): fine-tuning did not give a MaskRNN") }
            return tuned
          }
        }
        return segmenter
      }
    } else {
      makeSegmenter = {
        let segmenter = OneShotObjectsSegmenter(modelName: modelName, parent: parentState, settings: settings)
        segmenter.shouldStop = { stop.requested }
        return segmenter
      }
    }
    if let video, let firstMask {
      try segmentVideo(URL(fileURLWithPath: video), firstMask: URL(fileURLWithPath: firstMask), with: try makeSegmenter(),
                       into: folder, stop: stop)
    } else {
      try segmentDAVIS(DAVISSegmentation(makeSegmenter: makeSegmenter), fineTunes: !ModelZoo.maskRNNNames.contains(modelName) || steps != nil,
                       into: folder, stop: stop)
    }
  }

  private func segmentVideo(_ url: URL, firstMask: URL, with segmenter: any SequenceSegmenter, into folder: URL, stop: Interrupt) throws {
    let mask = try ImageIO.readLabel(firstMask)
    let writer = try PredictionWriter(palette: .pascal)
    let start = Date()
    do {
      let result = try writer.segmentVideo(url, with: segmenter, firstMask: mask, into: folder, frames: true, replacing: overwrite,
                                           shouldStop: { stop.requested })
      if result.stopped {
        print("stopped after \(result.frames) frames: \(result.video.path) holds them and plays")
        throw ExitCode(130)
      }
      print("\(result.frames) frames, \(ObjectMasks.ids(in: mask).count) object(s), " + String(format: "%.1f s", Date().timeIntervalSince(start)))
      print("masks: \(folder.appendingPathComponent(url.deletingPathExtension().lastPathComponent).path)")
      print("video: \(result.video.path)")
    } catch let error as TrainingError where error == .stopped {
      print("stopped: the frames so far are in \(folder.path)")
      throw ExitCode(130)
    }
  }

  private func segmentDAVIS(_ segmentation: DAVISSegmentation, fineTunes: Bool, into folder: URL, stop: Interrupt) throws {
    let dataset = try davis.dataset()
    var chosen = dataset.sequences
    if let sequences {
      let names = sequences.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
      if let unknown = names.first(where: { name in !dataset.sequences.contains { $0.name == name } }) {
        throw ValidationError("--sequences: '\(unknown)' is not a sequence of the DAVIS \(davis.year ?? 0) \(davis.split) split")
      }
      chosen = dataset.sequences.filter { names.contains($0.name) }
    }
    let bar = !plain && isatty(STDOUT_FILENO) == 1
    var timings: [DAVISSegmentation.Timing] = []
    var stopped = false
    for (number, sequence) in chosen.enumerated() {
      let label = "[\(number + 1)/\(chosen.count)] \(sequence.name)"
      if !overwrite && DAVISSegmentation.isFinished(sequence, in: folder) {
        print("\(label): already done, skipped")
        fflush(stdout)  // a line per sequence as it happens, also into a file or pipe
        continue
      }
      if bar { Self.show("\(label): fine-tuning") }
      do {
        let timing = try segmentation.segment(
          sequence, singleObject: davis.year == 2016, into: folder,
          progress: { done, total in if bar { Self.show("\(label): " + Self.progressBar(done, total)) } },
          shouldStop: { stop.requested })
        timings.append(timing)
        if bar { Self.show("") }
        let tuning = fineTunes ? String(format: "fine-tuned in %.1f s, ", timing.fineTuningSeconds) : ""
        print("\(label): \(timing.objects) object(s), \(tuning)" + String(format: "%.1f frames/s", timing.framesPerSecond))
        fflush(stdout)
      } catch let error as TrainingError where error == .stopped {
        if bar { Self.show("") }
        print("\(label): stopped; it will be segmented again on a rerun")
        stopped = true
        break
      }
    }
    try recordTimings(timings, in: folder)
    print("results: \(folder.path)")
    if stopped { throw ExitCode(130) }
  }

  /// Writes timing.json; sequences skipped now keep the timings an earlier run recorded.
  private func recordTimings(_ timings: [DAVISSegmentation.Timing], in folder: URL) throws {
    let timingURL = folder.appendingPathComponent("timing.json")
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    let earlier = (try? Data(contentsOf: timingURL)).flatMap { try? decoder.decode([DAVISSegmentation.Timing].self, from: $0) } ?? []
    let redone = Set(timings.map(\.sequence))
    let all = earlier.filter { !redone.contains($0.sequence) } + timings
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    do { try AtomicFile.write(encoder.encode(all), to: timingURL) } catch {
      throw CommandError("\(timingURL.path): cannot be written (\(error.localizedDescription))")
    }
  }

  /// Rewrites the terminal's current line.
  private static func show(_ text: String) {
    FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + text).utf8))
  }

  private static func progressBar(_ done: Int, _ total: Int, width: Int = 30) -> String {
    let filled = total > 0 ? width * done / total : width
    return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] \(done)/\(total) frames"
  }
}

/// Which DAVIS split: root, year, split and frame size.
struct DAVISArguments: ParsableArguments {
  @Option(help: "The DAVIS root folder.")
  var davis: String?

  @Option(help: "2016 or 2017.")
  var year: Int?

  @Option(help: "The split.")
  var split = "val"

  @Option(help: "DAVIS frame size: 480p or full.")
  var resolution = "480p"

  func validate() throws {
    if let year, year != 2016 && year != 2017 { throw ValidationError("--year must be 2016 or 2017, got \(year)") }
    if davis != nil && year == nil { throw ValidationError("--davis needs --year 2016 or 2017") }
    guard DAVISResolution(rawValue: resolution) != nil else {
      throw ValidationError("--resolution must be 480p or full, not '\(resolution)'")
    }
  }

  func dataset() throws -> VideoDataset {
    guard let davis, let year else { throw ValidationError("--davis ROOT and --year 2016|2017 are required") }
    let root = URL(fileURLWithPath: davis), size = DAVISResolution(rawValue: resolution) ?? .p480
    return year == 2016
      ? try VideoDataset.davis2016(root: root, split: split, resolution: size)
      : try VideoDataset.davis2017(root: root, split: split, resolution: size)
  }
}

/// The model name and weight file of `--parent`: a run folder (its model and latest
/// checkpoint) or a weight file of `model`.
/// How a MaskRNN parent computes its flows: as its run was trained (flow_method,
/// flow_preset, flow_weights), or DIS with the fast preset for a bare weight file.
func maskRNNFlow(parent: String, device: Device) throws -> FlowMethod {
  let config = URL(fileURLWithPath: parent).appendingPathComponent("config.yaml")
  guard FileManager.default.fileExists(atPath: config.path) else { return .dis(.fast) }
  return try TrainingConfig.resolve(file: config).maskRNN.method(device: device)
}

func parentWeights(_ parent: String, model: String) throws -> (String, URL) {
  let parentURL = URL(fileURLWithPath: parent)
  var isDirectory: ObjCBool = false
  guard FileManager.default.fileExists(atPath: parentURL.path, isDirectory: &isDirectory) else {
    throw ValidationError("--parent \(parent): no such file or folder")
  }
  guard isDirectory.boolValue else { return (model, parentURL) }
  let run = try RunLayout.existing(parentURL)
  return (try run.manifest().model, try run.latestCheckpointURL { warn($0) })
}
