import ArgumentParser
import Foundation
import SegKitTraining

struct Predict: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Segment an image, a folder of images or a video, and write label maps, colour masks and overlays.",
    discussion: """
      Images are normalised with ImageNet's mean and standard deviation. For each image <stem>, the \
      output folder gets <stem>.png, the label map as a palette PNG (its indices are the class ids, its \
      colours the colormap; --raw: a plain gray PNG of the ids), and on request <stem>_color.png (the \
      colourised mask) and <stem>_overlay.jpg (the mask blended over the image). A video <stem> gives \
      <stem>_overlay.mp4, and with --frames the per-frame files in <stem>/. The colormap is --colormap, \
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

  @Option(help: "Also write the logits as safetensors: `out` (and `aux`), [1, C, H, W] float32 (one image, one pass).")
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

  @OptionGroup var inference: InferenceArguments

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
    // Every argument, the input and the model are checked before anything is written.
    let shorterSide: Int?
    switch resize {
    case "none": shorterSide = nil
    case let text: guard let side = Int(text), side > 0 else {
        throw ValidationError("--resize must be 'none' or a positive length, got '\(text)'")
      }
      shorterSide = side
    }
    guard (0...1).contains(alpha) else { throw ValidationError("--alpha must be in [0, 1], got \(alpha)") }
    let config = try source.runConfig()
    let device = try resolveDevice(device)
    let evaluator = try inference.evaluator(config: config, device: device)
    let input = try Self.classify(URL(fileURLWithPath: self.input))
    if saveLogits != nil {
      guard case .image = input else { throw ValidationError("--save-logits takes a single image as --input") }
      guard evaluator.passes == 1, evaluator.scales == [1], evaluator.crop == nil else {
        throw ValidationError(
          "--save-logits writes the logits of one plain pass: leave out --scales, --flip and --crop (with --run, pass --scales 1 --no-flip --crop none)")
      }
    }
    let palette = try colormap.map(Colormap.named) ?? runColormap(config) ?? .pascal
    let loaded = try source.load(config: config, defaultClasses: nil, requireWeights: false)
    // A single image is read before anything is written, so that a bad one leaves nothing behind.
    let single: (url: URL, image: Image)?
    if case .image(let url) = input { single = (url, try ImageIO.read(url)) } else { single = nil }
    let folder = URL(fileURLWithPath: output)
    try createFolder(folder)
    let outputs = Outputs(palette: palette, raw: raw, color: color, overlay: overlay, alpha: alpha)

    if let single, let saveLogits {
      try predictWithLogits(loaded.network, single.image, stem: Self.stem(single.url), logits: saveLogits,
                            shorterSide: shorterSide, device: device, outputs: outputs, folder: folder)
      return
    }
    let segment = Segmenter(
      evaluator: evaluator, model: try Predictor(model: loaded.network, device: device).model, shorterSide: shorterSide)
    switch input {
    case .image(let url):
      try outputs.write(segment(single!.image), stem: Self.stem(url), into: folder)
    case .folder(let urls):
      var failures: [String] = []
      for url in urls {
        do {
          try outputs.write(segment(try ImageIO.read(url)), stem: Self.stem(url), into: folder)
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
      try segment.video(url, into: folder, outputs: outputs, frames: frames)
    }
  }

  /// The original single-image path: the model as loaded (not optimised), logits and labels at the model's input size.
  private func predictWithLogits(
    _ network: any SegmentationNetwork, _ image: Image, stem: String, logits path: String, shorterSide: Int?, device: Device,
    outputs: Outputs, folder: URL
  ) throws {
    let output = try Predictor(model: network, device: device, optimize: false).logits(image, shorterSide: shorterSide)
    try outputs.write((image, try Predictor.labels(output.out)), stem: stem, into: folder)
    var logits = try StateDict([("out", output.out.contiguous())])
    if let aux = output.aux { logits.set("aux", try aux.contiguous()) }
    try logits.save(to: URL(fileURLWithPath: path))
    print("logits: \(path)")
  }

  /// The run's dataset colormap (class colours of a folder dataset included); nil without a run.
  private func runColormap(_ config: TrainingConfig?) throws -> Colormap? {
    guard let config else { return nil }
    let format = try InferenceModel.datasetFormat(named: config.dataset)
    if let root = config.datasetDir,
       let data = try? SegmentationDataset.open(format, root: URL(fileURLWithPath: root), split: config.valSplit) {
      return data.colormap
    }
    // The dataset may not be on this machine: the named colormaps need no files.
    return try? Colormap.named(format == .vocAug ? "pascal" : format.rawValue)
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
}

/// Runs the model on one image at a time.
private struct Segmenter {
  let evaluator: Evaluator
  let model: any SegmentationNetwork
  let shorterSide: Int?

  /// The image and its labels (at the size the model saw it, with --resize).
  func callAsFunction(_ image: Image) throws -> (image: Image, labels: Image) {
    var batch = try ImageNormalization.batch(image)
    if let shorterSide {
      let scale = Double(shorterSide) / Double(min(image.width, image.height))
      let size = Size2(Int((Double(image.height) * scale).rounded()), Int((Double(image.width) * scale).rounded()))
      batch = try batch.interpolate(size: size, mode: .bilinear)
    }
    return (image, try Predictor.labels(evaluator.predictScores(model, batch: batch)))
  }

  /// `<stem>_overlay.mp4` of the video's frames, and with `frames` each frame's
  /// outputs in `<stem>/`. A failure part-way still finishes the video with the
  /// frames done so far.
  func video(_ url: URL, into folder: URL, outputs: Outputs, frames: Bool) throws {
    let reader = try VideoReader(url)
    let stem = Predict.stem(url)
    let videoURL = folder.appendingPathComponent("\(stem)_overlay.mp4")
    let frameFolder = folder.appendingPathComponent(stem)
    if frames { try createFolder(frameFolder) }
    var writer: VideoWriter?
    do {
      while let frame = try reader.next() {
        let result = try self(frame)
        if writer == nil {
          writer = try VideoWriter(
            url: videoURL, width: result.labels.width, height: result.labels.height, fps: reader.fps > 0 ? reader.fps : 25)
        }
        try writer!.write(try outputs.blend(result))
        if frames {
          try outputs.write(result, stem: String(format: "%06d", reader.position - 1), into: frameFolder, announce: false)
        }
      }
    } catch {
      try? writer?.finish()
      throw error
    }
    guard let writer else { throw CommandError("\(url.path): the video has no frames") }
    try writer.finish()
    print("video: \(videoURL.path) (\(writer.frameCount) frames)")
    if frames { print("frames: \(frameFolder.path)") }
  }
}

/// Which files each segmented image gets, and how they look.
private struct Outputs {
  let palette: Colormap
  let raw: Bool
  let color: Bool
  let overlay: Bool
  let alpha: Double

  func write(_ result: (image: Image, labels: Image), stem: String, into folder: URL, announce: Bool = true) throws {
    let labelsURL = folder.appendingPathComponent("\(stem).png")
    try ImageIO.writePNG(result.labels, to: labelsURL, palette: raw ? nil : palette)
    if announce { print("labels: \(labelsURL.path)") }
    if color {
      try ImageIO.writePNG(try palette.colorize(result.labels), to: folder.appendingPathComponent("\(stem)_color.png"))
    }
    if overlay {
      try ImageIO.writeJPEG(try blend(result), to: folder.appendingPathComponent("\(stem)_overlay.jpg"))
    }
  }

  /// (1 − alpha) · image + alpha · mask colour, per pixel, at the labels' size.
  func blend(_ result: (image: Image, labels: Image)) throws -> Image {
    let mask = try palette.colorize(result.labels)
    var out = result.image.rgb()
    if out.width != mask.width || out.height != mask.height {
      let size = Size2(mask.height, mask.width)
      out = try Image(tensor: try out.tensor().unsqueeze(0).interpolate(size: size, mode: .bilinear).squeeze(dim: 0))
    }
    for i in out.pixels.indices {
      out.pixels[i] = UInt8(((1 - alpha) * Double(out.pixels[i]) + alpha * Double(mask.pixels[i])).rounded())
    }
    return out
  }
}
