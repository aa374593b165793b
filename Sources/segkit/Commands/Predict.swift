import ArgumentParser
import Foundation
import SegKitInference

struct Predict: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Segment an image, a folder of images or a video, and write label maps, colour masks and overlays.",
    discussion: """
      Images are normalised with ImageNet's mean and standard deviation. For each image <stem>, the \
      output folder gets <stem>.png, the label map as a palette PNG (its indices are the class ids, its \
      colours the colormap; --raw: a plain gray PNG of the ids), and on request <stem>_color.png (the \
      colourised mask) and <stem>_overlay.jpg (the mask blended over the image). A video <stem> gives \
      <stem>_overlay.mp4, and with --frames the per-frame files in <stem>/; Ctrl-C stops after the \
      current frame and leaves a playable video of the frames done (exit 130). The colormap is --colormap, \
      else the run's dataset's, else Pascal VOC's. --scales, --flip and --crop work as in `segkit eval`.
      """
  )

  @OptionGroup var source: ModelArguments

  @Option(help: "An image (JPEG or PNG), a folder of images, or a video (mp4, avi, mov, mkv, webm, …).")
  var input: String

  @Option(help: "'none' to run at the image's own size, or the length of the shorter side to resize to.")
  var resize: String = "none"

  @Option(help: "Folder for the outputs, named after the inputs.")
  var out: String?

  @Option(help: ArgumentHelp("Deprecated spelling of --out.", visibility: .hidden))
  var output: String?

  @Option(help: "Also write the logits as safetensors: `out` and the model's other outputs (`aux`; `side2`…`side5` for OSVOS), [1, C, H, W] float32 (one image, one pass).")
  var saveLogits: String?

  @Option(help: "Colormap: pascal, cityscapes, ade20k or camvid (default: the run's dataset's, else pascal).")
  var colormap: String?

  @Flag(help: "Write label maps as plain 8-bit gray PNGs of the class ids (DeepLab's also_save_raw_predictions).")
  var raw = false

  @Flag(help: "Also write the colourised mask, <stem>_color.png.")
  var color = false

  @Flag(help: "Also write the mask blended over the image, <stem>_overlay.jpg.")
  var overlay = false

  @Option(help: "Opacity of the mask in overlays, in [0, 1].")
  var alpha: Double = 0.5

  @Flag(help: "For a video, also write each frame's outputs to <output>/<stem>/.")
  var frames = false

  @Flag(help: "Replace an existing <stem>_overlay.mp4 (image outputs in --output are always replaced).")
  var force = false

  @OptionGroup var inference: InferenceArguments

  @OptionGroup var memory: MemoryLimitArgument

  @OptionGroup var device: DeviceArgument

  func run() throws {
    Torch.keepFreedMemory()  // activations reuse freed memory from image to image instead of faulting fresh pages in
    if output != nil { deprecated("--output", use: "--out") }
    // Every argument, the input and the model are checked before anything is written.
    let shorterSide: Int?
    switch resize {
    case "none": shorterSide = nil
    case let text: guard let side = Int(text), side > 0, side <= InferenceSettings.maximumSide else {
        throw ValidationError("--resize must be 'none' or a length from 1 to \(InferenceSettings.maximumSide), got '\(text)'")
      }
      shorterSide = side
    }
    guard (0...1).contains(alpha) else { throw ValidationError("--alpha must be in [0, 1], got \(alpha)") }
    try memory.apply()
    let run = try source.run(for: "segkit predict", tasks: [.semantic, .foreground])
    let device = try self.device.resolved()
    let settings = try inference.settings(defaults: run?.defaults)
    let precision = try inference.chosenPrecision()
    let input: PredictionInput
    do { input = try PredictionInput(URL(fileURLWithPath: self.input)) } catch let error as InferenceError {
      throw ValidationError("--input \(error.message)")
    }
    if saveLogits != nil {
      guard case .image = input else { throw ValidationError("--save-logits takes a single image as --input") }
      guard settings.isSinglePlainPass else {
        throw ValidationError(
          "--save-logits writes the logits of one plain pass: leave out --scales, --flip and --crop (with --run, pass --scales 1 --no-flip --crop none)")
      }
    }
    let loaded = try source.load(run: run?.layout, fallbackClasses: nil, requireWeights: false)
    let palette = try colormap.map(Colormap.named) ?? (loaded.manifest.colors.isEmpty ? nil : loaded.manifest.colormap()) ?? .pascal
    // Memory is estimated from each header before the image is read, on the fp32 model as loaded.
    let estimator = ImageSegmenter(borrowing: loaded.network, settings: saveLogits == nil ? settings : .single, device: device,
                                   normalization: loaded.manifest.normalization)
    let admit = { (url: URL) in try estimator.checkMemory(ofImageAt: url, shorterSide: shorterSide) }
    // A single image is read before anything is written, so that a bad one leaves nothing behind.
    var single: (url: URL, image: Image)?
    if case .image(let url) = input { try admit(url); single = (url, try ImageIO.read(url)) }
    let folder = URL(fileURLWithPath: out ?? output ?? "predictions")
    if case .video(let url) = input, !force, FileManager.default.fileExists(atPath: PredictionWriter.videoURL(for: url, in: folder).path) {
      throw ValidationError("\(PredictionWriter.videoURL(for: url, in: folder).path) exists: --force replaces it")
    }
    try createFolder(folder)
    let writer = try PredictionWriter(palette: palette, raw: raw, color: color, overlay: overlay, alpha: alpha)
    let calibration = precision == .int8
      ? try input.calibrationImages(inference.calibrationImages, single: single?.image, admit: admit) : []
    if let single, let saveLogits {
      // The model as loaded (optimised only at a reduced precision): its logits at its input size.
      let segmenter = try ImageSegmenter(model: loaded.network, device: device, normalization: loaded.manifest.normalization,
                                         optimize: precision != .fp32 || inference.measureKernels, precision: precision,
                                         calibration: calibration, measuringKernels: inference.measureKernels)
      let output = try segmenter.outputs(single.image, shorterSide: shorterSide)
      let labels = try writer.write(image: single.image, labels: segmenter.labels(fromScores: output.out),
                                    stem: PredictionInput.stem(single.url), into: folder)
      print("labels: \(labels.path)")
      try output.stateDict(names: loaded.network.outputNames).save(to: URL(fileURLWithPath: saveLogits))
      print("logits: \(saveLogits)")
      return
    }
    let segmenter = try ImageSegmenter(model: loaded.network, settings: settings, device: device, normalization: loaded.manifest.normalization,
                                       precision: precision, calibration: calibration, measuringKernels: inference.measureKernels)
    switch input {
    case .image(let url):
      guard let image = single?.image else { return }
      let labels = try writer.write(image: image, labels: segmenter.labels(image, shorterSide: shorterSide),
                                    stem: PredictionInput.stem(url), into: folder)
      print("labels: \(labels.path)")
    case .folder(let urls):
      let failures = try writer.segmentImages(urls, with: segmenter, shorterSide: shorterSide, into: folder, admit: admit) {
        print("labels: \($0.path)")
      } failed: { warn("\($0)", prefix: "error: ") }
      print("\(urls.count - failures.count) of \(urls.count) images segmented into \(folder.path)")
      if !failures.isEmpty {
        throw CommandError("\(failures.count) of \(urls.count) images failed:\n" + failures.map { "  \($0)" }.joined(separator: "\n"))
      }
    case .video(let url):
      let stop = Interrupt.install(message: "stopping after this frame; the video keeps the frames done (Ctrl-C again quits at once)")
      let result = try writer.segmentVideo(url, with: FramewiseSegmenter(segmenter, shorterSide: shorterSide), into: folder,
                                           frames: frames, replacing: force, shouldStop: { stop.requested })
      print("video: \(result.video.path) (\(result.frames) frames\(result.stopped ? ", stopped early; it plays" : ""))")
      if frames { print("frames: \(folder.appendingPathComponent(PredictionInput.stem(url)).path)") }
      if result.stopped { throw ExitCode(130) }
    }
  }
}
