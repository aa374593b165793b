import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor
import SegKitTraining

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
      already complete in --out are skipped unless --force; Ctrl-C stops after the \
      current frame and keeps the finished sequences. Score the folder with `segkit vos eval`.

      A video (--video FILE --first-mask PNG): the mask holds object ids (palette indices; \
      a 0/255 mask is one object). Writes <out>/<stem>/NNNNNN.png (palette PNGs of object \
      ids, one per frame) and <out>/<stem>_overlay.mp4; an earlier result there is kept \
      unless --force. --out may not lie inside the DAVIS dataset being read.
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

  @OptionGroup var fineTuning: FineTuningArguments

  @OptionGroup var flowSource: MaskRNNFlowArgument

  @OptionGroup var device: DeviceArgument

  @OptionGroup var replace: ForceArgument

  @Flag(help: "Print a line per sequence even on a terminal (no progress bar).")
  var plain = false

  func validate() throws {
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
    let replacing = replace.replacing()
    let settings = fineTuning.settings(device: try device.resolved())
    let (modelName, weights) = try parentWeights(parent, model: model)
    let folder = URL(fileURLWithPath: out)
    if let video, !replacing, let earlier = PredictionWriter.earlierResult(of: URL(fileURLWithPath: video), in: folder, frames: true) {
      throw ValidationError("\(earlier.path) exists: --force replaces it")
    }
    if let root = davis.davis, OutputFolder.isInside(folder, URL(fileURLWithPath: root)) {
      throw ValidationError("--out \(out) is inside the DAVIS dataset being read (\(root)): results there would mix with its annotations")
    }
    let segmenters: ParentSegmenters
    do {
      segmenters = try ParentSegmenters(
        modelName: modelName, parent: try ModelLoader.readWeights(weights), settings: settings, fineTuneMaskRNN: fineTuning.steps != nil,
        flow: try flowSource.source(model: modelName, parent: parent, davis: davis.davis, device: settings.device))
    } catch let error as TrainingError {
      throw CommandError("--parent \(parent): \(error.message)")
    }
    try createFolder(folder)
    let stop = Interrupt.install(message: "stopping after this frame; finished sequences are kept (Ctrl-C again quits at once)")
    if let video, let firstMask {
      try segmentVideo(URL(fileURLWithPath: video), firstMask: URL(fileURLWithPath: firstMask),
                       with: segmenters.make { stop.requested }, into: folder, replacing: replacing, stop: stop)
    } else {
      let segmentation = DAVISSegmentation { segmenters.make(sequence: $0.name) { stop.requested } }
      try segmentDAVIS(segmentation, fineTunes: segmenters.fineTunes, into: folder,
                       replacing: replacing, stop: stop)
    }
  }

  private func segmentVideo(_ url: URL, firstMask: URL, with segmenter: any SequenceSegmenter, into folder: URL, replacing: Bool, stop: Interrupt) throws {
    let mask = try ImageIO.readLabel(firstMask)
    let start = Date()
    do {
      let result = try PredictionWriter(palette: .pascal).segmentVideo(
        url, with: segmenter, firstMask: mask, into: folder, frames: true, replacing: replacing, shouldStop: { stop.requested })
      if result.stopped {
        print("stopped after \(result.frames) frames: \(result.video.path) holds them and plays")
        throw ExitCode(130)
      }
      print("\(result.frames) frames, \(ObjectMasks.ids(in: mask).count) object(s), " + String(format: "%.1f s", Date().timeIntervalSince(start)))
      print("masks: \(folder.appendingPathComponent(url.deletingPathExtension().lastPathComponent).path)")
      print("video: \(result.video.path)")
    } catch is StoppedOnRequest {
      print("stopped: the frames so far are in \(folder.path)")
      throw ExitCode(130)
    }
  }

  private func segmentDAVIS(_ segmentation: DAVISSegmentation, fineTunes: Bool, into folder: URL, replacing: Bool, stop: Interrupt) throws {
    let chosen = try davis.sequences(sequences)
    let bar = !plain && isatty(STDOUT_FILENO) == 1
    let number = Dictionary(uniqueKeysWithValues: chosen.enumerated().map { ($0.element.name, $0.offset + 1) })
    func label(_ sequence: VideoSequence) -> String { "[\(number[sequence.name] ?? 0)/\(chosen.count)] \(sequence.name)" }
    let outcome = try segmentation.run(chosen, singleObject: davis.year == 2016, into: folder, overwrite: replacing, report: { event in
      switch event {
      case .skipped(let sequence): print("\(label(sequence)): already done, skipped")
      case .started(let sequence): if bar { showOnCurrentLine("\(label(sequence)): fine-tuning") }
      case .frames(let sequence, let done, let total): if bar { showOnCurrentLine("\(label(sequence)): " + progressBar(done, total, unit: "frames")) }
      case .finished(let sequence, let timing):
        if bar { showOnCurrentLine("") }
        let tuning = fineTunes ? String(format: "fine-tuned in %.1f s, ", timing.fineTuningSeconds) : ""
        print("\(label(sequence)): \(timing.objects) object(s), \(tuning)" + String(format: "%.1f frames/s", timing.framesPerSecond))
      case .stopped(let sequence):
        if bar { showOnCurrentLine("") }
        print("\(label(sequence)): stopped; it will be segmented again on a rerun")
      }
      fflush(stdout)  // a line per sequence as it happens, also into a file or pipe
    }, shouldStop: { stop.requested })
    print("results: \(folder.path)")
    if outcome.stopped { throw ExitCode(130) }
  }
}
