import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor
import SegKitTraining

struct VOSSegment: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "segment",
    abstract: "Segment DAVIS sequences, or a video with its first frame's mask: OSVOS's one-shot fine-tuning, MaskRNN's recurrence or XMem's memory.",
    discussion: """
      OSVOS parents (osvos_* models): each object of the first mask gets its own copy of the \
      parent, fine-tuned on the first frame and that object's mask. MaskRNN runs \
      (maskrnn_* models, trained by `segkit vos train`): each object's mask is carried from \
      frame to frame, warped by DIS flow and corrected by the network; with --steps, each \
      object first gets a copy fine-tuned on the first frame (its previous mask the first \
      mask spoilt afresh each step). Either way every frame takes per pixel the object of \
      highest probability above 1/2. XMem (--weights XMem.pth, no fine-tuning): every \
      object is read from a memory of past frames, bounded by the --mem-every … \
      --max-long-term-elements settings (XMem's defaults); each pixel takes the most \
      probable object or the background. YouTube-VOS (--youtube-vos SPLIT, XMem): objects \
      join on the frames their masks first appear; writes <out>/Annotations/<video>/<frame>.png.

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

  @OptionGroup var method: VOSMethodArguments

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

  @OptionGroup var xmem: XMemArguments

  @OptionGroup var device: DeviceArgument

  @OptionGroup var replace: ForceArgument

  @Flag(help: "Print a line per sequence even on a terminal (no progress bar).")
  var plain = false

  @Option(help: "A YouTube-VOS split folder (JPEGImages, Annotations, meta.json) to segment instead (xmem).")
  var youtubeVOS: String?

  func validate() throws {
    switch [davis.davis != nil, video != nil, youtubeVOS != nil].filter({ $0 }).count {
    case 0: throw ValidationError("give --davis ROOT --year 2016|2017, --video FILE --first-mask PNG, or --youtube-vos SPLIT")
    case 1: break
    default: throw ValidationError("--davis, --video and --youtube-vos exclude each other: segment one at a time")
    }
    if video != nil {
      guard firstMask != nil else { throw ValidationError("--video needs --first-mask, the first frame's object mask") }
    } else if firstMask != nil {
      throw ValidationError("--first-mask is for --video; DAVIS and YouTube-VOS sequences bring their own")
    }
    if sequences != nil, davis.davis == nil { throw ValidationError("--sequences is for --davis") }
    if youtubeVOS != nil, method.weights == nil {
      throw ValidationError("--youtube-vos is for --method xmem (--weights): its objects appear on later frames")
    }
  }

  func run() throws {
    Torch.keepFreedMemory()
    let replacing = replace.replacing()
    let settings = fineTuning.settings(device: try device.resolved())
    let (chosen, parent) = try method.resolved()
    let folder = URL(fileURLWithPath: out)
    if let video, !replacing, let earlier = PredictionWriter.earlierResult(of: URL(fileURLWithPath: video), in: folder, frames: true) {
      throw ValidationError("\(earlier.path) exists: --force replaces it")
    }
    if let root = davis.davis, OutputFolder.isInside(folder, URL(fileURLWithPath: root)) {
      throw ValidationError("--out \(out) is inside the DAVIS dataset being read (\(root)): results there would mix with its annotations")
    }
    let stop = Interrupt.install(message: "stopping after this frame; finished sequences are kept (Ctrl-C again quits at once)")
    let make: (VideoSequence?) throws -> any SequenceSegmenter
    var makeXMem: ((VideoSequence) throws -> any MaskAcceptingSegmenter)?
    if let parent {
      let segmenters: ParentSegmenters
      do {
        segmenters = try ParentSegmenters(
          modelName: parent.model, parent: try ModelLoader.readWeights(parent.weights), settings: settings,
          fineTuneMaskRNN: fineTuning.steps != nil,
          flow: try flowSource.source(model: parent.model, parent: method.parent ?? "", davis: davis.davis, device: settings.device))
      } catch let error as TrainingError {
        throw CommandError("--parent \(method.parent ?? ""): \(error.message)")
      }
      make = { sequence in segmenters.make(sequence: sequence?.name) { stop.requested } }
    } else {
      let writer = method.saveProbabilities.map { ProbabilityWriter(folder: URL(fileURLWithPath: $0)) }
      let weights = URL(fileURLWithPath: method.weights ?? "")
      let runSettings = try XMemArguments.runSettings(besideWeights: weights)
      let xmemSettings = try xmem.settings(over: runSettings)
      print("XMem: \(xmemSettings.summary)\(runSettings == nil ? "" : " (over the training run's)")")
      let segmenters = try XMemSegmenters(weights: weights, settings: xmemSettings, device: settings.device, probabilities: writer,
                                          precision: settings.precision)
      let videoName = video.map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent } ?? "video"
      make = { sequence in
        try segmenters.make(sequence: sequence?.name ?? videoName,
                            frameNames: sequence?.frames.map { $0.image.deletingPathExtension().lastPathComponent } ?? [])
      }
      makeXMem = { try segmenters.make(sequence: $0.name, frameNames: $0.frames.map { $0.image.deletingPathExtension().lastPathComponent }) }
    }
    try createFolder(folder)
    if let youtubeVOS, let makeXMem {
      try segmentYouTubeVOS(URL(fileURLWithPath: youtubeVOS), with: YouTubeVOSSegmentation(makeSegmenter: makeXMem), into: folder, stop: stop)
    } else if let video, let firstMask {
      try segmentVideo(URL(fileURLWithPath: video), firstMask: URL(fileURLWithPath: firstMask),
                       with: try make(nil), into: folder, replacing: replacing, stop: stop)
    } else {
      try segmentDAVIS(DAVISSegmentation(makeSegmenterFor: make), fineTunes: chosen != .xmem && (chosen == .osvos || fineTuning.steps != nil),
                       into: folder, replacing: replacing, stop: stop)
    }
  }
}
