import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor

struct DVSVideo: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "video",
    abstract: "Segment a video with dynamic key frames into an annotated video: overlays or colour masks, boxes and distances.",
    discussion: """
      Writes OUT/<stem>_overlay.mp4 with as many frames as the input: the labels' colours \
      blended over each frame (--alpha; 1 gives the colour masks alone), and with --boxes a \
      box around each connected region of the named classes, captioned with its class and \
      the ground distance a pinhole camera gives: Z = focal length × camera height / (rows \
      between the box's lowest row and the horizon). That assumes flat ground, a level camera \
      at --camera-height metres, the horizon at --horizon (row) and the object standing on \
      its lowest pixel; it is a geometric estimate, not a measured range, and boxes that do \
      not reach below the horizon get none. Ends with frames per second and the paths taken. \
      Ctrl-C stops after the current frame and leaves a playable video of the frames done.
      """)

  @Argument(help: "The video (mp4, avi, mov, mkv, webm, …).")
  var input: String

  @OptionGroup var networks: DVSArguments
  @OptionGroup var policy: PolicyArguments

  @Option(help: "Output folder.")
  var out: String

  @Option(help: "Opacity of the colours over the frames, 0 to 1 (1: colour masks).")
  var alpha = 0.5

  @Option(help: "Comma-separated class names to box (e.g. car,person); none by default.")
  var boxes: String?

  @Option(help: "The smallest region boxed, in pixels.")
  var minimumBoxArea = 40

  @Option(help: "Camera height above the ground, metres.")
  var cameraHeight = 1.5

  @Option(help: "Focal length in pixels (default: the frame width, a 53° horizontal field of view).")
  var focalLength: Double?

  @Option(help: "Image row of the horizon (default: the middle row).")
  var horizon: Double?

  @OptionGroup var replace: ForceArgument

  func run() throws {
    Torch.keepFreedMemory()
    let replacing = replace.replacing()
    let inputURL = URL(fileURLWithPath: input)
    guard FileManager.default.fileExists(atPath: inputURL.path) else { throw ValidationError("\(input): no such file") }
    guard (0...1).contains(alpha) else { throw ValidationError("--alpha must be in [0, 1], got \(alpha)") }
    let folder = URL(fileURLWithPath: out)
    let videoURL = PredictionWriter.videoURL(for: inputURL, in: folder)
    if FileManager.default.fileExists(atPath: videoURL.path) && !replacing {
      throw ValidationError("\(videoURL.path) exists: --force replaces it")
    }
    let decisionNetwork = try policy.decisionNetwork()
    let chosen = try policy.chosen(decision: decisionNetwork)
    let (segmenter, manifest, _) = try networks.segmenterAndManifest(policy: chosen, decision: decisionNetwork)
    let colormap = try manifest.colormap()
    let names = boxes?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } ?? []
    var annotator: BoxAnnotator
    do { annotator = try BoxAnnotator(names: names, classNames: manifest.classNames, colormap: colormap) } catch let error as InferenceError {
      throw ValidationError("--boxes: \(error.message)")
    }
    (annotator.minimumArea, annotator.cameraHeight, annotator.focalLength, annotator.horizon) = (minimumBoxArea, cameraHeight, focalLength, horizon)
    try createFolder(folder)
    let writer = try PredictionWriter(palette: colormap, alpha: alpha)
    let stop = Interrupt.install(message: "stopping after this frame; the video keeps the frames done (Ctrl-C again quits at once)")
    let start = Date()
    let result = try writer.segmentVideo(inputURL, with: segmenter, into: folder, frames: false, replacing: replacing,
                                         annotate: names.isEmpty ? nil : { try annotator.annotate(&$0, labels: $1) },
                                         shouldStop: { stop.requested })
    let seconds = Date().timeIntervalSince(start)
    let counts = segmenter.counts
    print("video: \(result.video.path) (\(result.frames) frames\(result.stopped ? ", stopped early; it plays" : ""))")
    print(String(format: "%.2f frames/s (decoding and encoding included); %d segmentation steps, %d flow steps in %@ regions (%@)",
                 Double(result.frames) / max(seconds, 1e-9), counts.segmentationSteps, counts.flowSteps, networks.regions,
                 chosen.description))
    if result.stopped { throw ExitCode(130) }
  }
}
