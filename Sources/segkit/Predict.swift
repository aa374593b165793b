import ArgumentParser
import Foundation
import SegKitInference
import SegKitTraining

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
  var output: String = "predictions"

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

  @Option(help: "Device: cpu, cuda, cuda:N or mps.")
  var device: String = "cpu"

  static let videoExtensions: Set<String> = ["mp4", "avi", "mov", "mkv", "webm", "m4v", "mpg", "mpeg", "wmv", "flv", "mxf"]
  static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]

  enum Input {
    case image(URL)
    case folder([URL])
    case video(URL)
  }

  func run() throws {
    Torch.keepFreedMemory()  // activations reuse freed memory from image to image instead of faulting fresh pages in
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
    let run = try source.run()
    let device = try resolveDevice(device)
    let settings = try inference.settings(config: run?.config)
    let precision = try inference.chosenPrecision()
    let input = try Self.classify(URL(fileURLWithPath: self.input))
    if saveLogits != nil {
      guard case .image = input else { throw ValidationError("--save-logits takes a single image as --input") }
      guard settings.isSinglePlainPass else {
        throw ValidationError(
          "--save-logits writes the logits of one plain pass: leave out --scales, --flip and --crop (with --run, pass --scales 1 --no-flip --crop none)")
      }
    }
    let loaded = try source.load(run: run?.layout, fallbackClasses: nil, requireWeights: false)
    let palette = try colormap.map(Colormap.named)
      ?? (loaded.manifest.colors.isEmpty ? nil : loaded.manifest.colormap()) ?? .pascal
    // Each image's memory is estimated from its header before it is read (and before
    // int8 calibrates on it), on the fp32 model as loaded: reduced precisions take less.
    let estimator = ImageSegmenter(borrowing: loaded.network, settings: saveLogits == nil ? settings : .single, device: device,
                                   normalization: loaded.manifest.normalization)
    let checkMemory = { (url: URL) in
      // A file whose header cannot be read is left for ImageIO.read to name the problem.
      guard let size = try? ImageIO.size(of: url) else { return }
      try estimator.checkMemory(height: size.height, width: size.width, shorterSide: shorterSide, name: url.path)
    }
    // A single image is read before anything is written, so that a bad one leaves nothing behind.
    let single: (url: URL, image: Image)?
    if case .image(let url) = input {
      try checkMemory(url)
      single = (url, try ImageIO.read(url))
    } else { single = nil }
    let folder = URL(fileURLWithPath: output)
    if case .video(let url) = input, !force {
      let video = PredictionWriter.videoURL(for: url, in: folder)
      if FileManager.default.fileExists(atPath: video.path) {
        throw ValidationError("\(video.path) exists: --force replaces it")
      }
    }
    try createFolder(folder)
    let writer = try PredictionWriter(palette: palette, raw: raw, color: color, overlay: overlay, alpha: alpha)
    let normalization = loaded.manifest.normalization

    let calibration = precision == .int8 ? try calibrationImages(input, single: single?.image, checkMemory: checkMemory) : []
    if let single, let saveLogits {
      // The model as loaded (not optimised, unless at a reduced precision): its logits
      // and labels at its input size.
      let segmenter = try ImageSegmenter(
        model: loaded.network, device: device, normalization: normalization, optimize: precision != .fp32,
        precision: precision, calibration: calibration)
      let output = try segmenter.outputs(single.image, shorterSide: shorterSide)
      let labels = try writer.write(image: single.image, labels: segmenter.labels(fromScores: output.out),
                                    stem: Self.stem(single.url), into: folder)
      print("labels: \(labels.path)")
      var logits = try StateDict([("out", output.out.contiguous())])
      for name in loaded.network.outputNames.dropFirst() {
        if let extra = output.extras[name] { logits.set(name, try extra.contiguous()) }
      }
      try logits.save(to: URL(fileURLWithPath: saveLogits))
      print("logits: \(saveLogits)")
      return
    }
    let segmenter = try ImageSegmenter(
      model: loaded.network, settings: settings, device: device, normalization: normalization, precision: precision,
      calibration: calibration)
    switch input {
    case .image(let url):
      guard let single else { return }
      let labels = try writer.write(image: single.image, labels: segmenter.labels(single.image, shorterSide: shorterSide),
                                    stem: Self.stem(url), into: folder)
      print("labels: \(labels.path)")
    case .folder(let urls):
      var failures: [String] = []
      for url in urls {
        do {
          try checkMemory(url)
          let image = try ImageIO.read(url)
          let labels = try writer.write(image: image, labels: segmenter.labels(image, shorterSide: shorterSide),
                                        stem: Self.stem(url), into: folder)
          print("labels: \(labels.path)")
        } catch {
          // One bad file does not stop the others; it is reported, and the exit status says so.
          warn("\(error)", prefix: "error: ")
          failures.append("\(error)")
        }
      }
      print("\(urls.count - failures.count) of \(urls.count) images segmented into \(folder.path)")
      if !failures.isEmpty {
        throw CommandError("\(failures.count) of \(urls.count) images failed:\n" + failures.map { "  \($0)" }.joined(separator: "\n"))
      }
    case .video(let url):
      let stop = Interrupt.install(message: "stopping after this frame; the video keeps the frames done (Ctrl-C again quits at once)")
      let result = try writer.segmentVideo(
        url, with: FramewiseSegmenter(segmenter, shorterSide: shorterSide), into: folder, frames: frames, replacing: force,
        shouldStop: { stop.requested })
      print("video: \(result.video.path) (\(result.frames) frames\(result.stopped ? ", stopped early; it plays" : ""))")
      if frames { print("frames: \(folder.appendingPathComponent(Self.stem(url)).path)") }
      if result.stopped { throw ExitCode(130) }
    }
  }

  static func classify(_ url: URL) throws -> Input {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
      throw ValidationError("--input \(url.path): no such file or folder")
    }
    if isDirectory.boolValue {
      let entries: [URL]
      do {
        entries = try FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: nil, options: [.skipsHiddenFiles])
      } catch {
        throw ValidationError("--input \(url.path): cannot list the folder (\(error.localizedDescription))")
      }
      let images = entries.filter { imageExtensions.contains($0.pathExtension.lowercased()) }
        .sorted { $0.lastPathComponent < $1.lastPathComponent }
      guard !images.isEmpty else { throw ValidationError("--input \(url.path): the folder holds no .jpg, .jpeg or .png image") }
      let clashes = Dictionary(grouping: images, by: stem).filter { $0.value.count > 1 }
      if let clash = clashes.min(by: { $0.key < $1.key }) {
        throw ValidationError("--input \(url.path): \(clash.value.map(\.lastPathComponent).joined(separator: " and ")) would write the same outputs")
      }
      return .folder(images)
    }
    return videoExtensions.contains(url.pathExtension.lowercased()) ? .video(url) : .image(url)
  }

  static func stem(_ url: URL) -> String { url.deletingPathExtension().lastPathComponent }

  /// What int8 calibrates on: the first --calibration-images images (or frames) of
  /// the input; unreadable ones are left for the segmenting loop to report.
  func calibrationImages(_ input: Input, single: Image?, checkMemory: (URL) throws -> Void) throws -> [Image] {
    let count = inference.calibrationImages
    switch input {
    case .image: return single.map { [$0] } ?? []
    case .folder(let urls):
      var images: [Image] = []
      for url in urls where images.count < count {
        if (try? checkMemory(url)) != nil, let image = try? ImageIO.read(url) { images.append(image) }
      }
      guard !images.isEmpty else { throw ValidationError("--precision int8: no readable image in --input to calibrate on") }
      return images
    case .video(let url):
      let reader = try VideoReader(url)
      defer { reader.close() }
      var frames: [Image] = []
      while frames.count < count, let frame = try reader.next() { frames.append(frame) }
      guard !frames.isEmpty else { throw ValidationError("--precision int8: \(url.path) has no frame to calibrate on") }
      return frames
    }
  }
}
