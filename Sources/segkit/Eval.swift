import ArgumentParser
import Foundation
import SegKitTraining

struct Eval: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Score a model on a dataset split: mIoU, per-class IoU, accuracies, fwIoU and the confusion matrix.",
    discussion: """
      The model comes from a run folder (--run: its config.yaml names the model, classes, dataset and \
      evaluation settings; its latest checkpoint holds the weights) or from --model and --weights; \
      arguments override the run's settings. Void pixels (255) are not counted. Rates are fractions \
      in the JSON and percentages in the table; the confusion matrix has the ground truth in rows.

      --scales and --flip average the softmax probabilities of every pass after resizing them to the \
      image, as DeepLab's eval_scales and add_flipped_images do. --crop H,W runs images larger than \
      the crop in windows that overlap by --overlap of the crop, averaging the logits where they overlap.
      """)

  @OptionGroup var source: ModelArguments

  @Option(help: "Dataset format: voc, voc_aug, cityscapes, ade20k, camvid or folder (default: the run's).")
  var dataset: String?

  @Option(help: "Dataset root folder (default: the run's dataset_dir).")
  var datasetDir: String?

  @Option(help: "Split to evaluate (default: the run's val_split, else val).")
  var split: String?

  @OptionGroup var inference: InferenceArguments

  @Option(help: "Evaluate only the first N images of the split.")
  var limit: Int?

  @Option(help: "Also write the scores as JSON: mIoU, pixel_accuracy, mean_accuracy, fwIoU, per_class_iou, confusion_matrix, ….")
  var json: String?

  @Option(help: "Folder for the predicted label maps: palette PNGs named after the samples.")
  var savePredictions: String?

  @Option(help: "Device: auto (the first CUDA device, else the CPU), cpu, cuda, cuda:N or mps.")
  var device: String = "auto"

  func run() throws {
    let config = try source.runConfig()
    let device = try resolveDevice(device)
    let evaluator = try inference.evaluator(config: config, device: device)
    if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
    let jsonURL = try json.map { try writableFile($0, option: "--json") }

    guard let datasetName = dataset ?? config?.dataset else {
      throw ValidationError("--dataset is needed without --run")
    }
    let format = try InferenceModel.datasetFormat(named: datasetName)
    guard let root = datasetDir ?? config?.datasetDir else {
      throw ValidationError("--dataset-dir is needed\(config == nil ? " without --run" : ": the run's config.yaml has no dataset_dir")")
    }
    let data = try SegmentationDataset.open(format, root: URL(fileURLWithPath: root), split: split ?? config?.valSplit ?? "val")
    let datasetClasses = data.openEndedClasses || data.classNames.isEmpty ? nil : data.classNames.count
    let loaded = try source.load(config: config, defaultClasses: datasetClasses, requireWeights: true)
    if let datasetClasses, datasetClasses != loaded.classes {
      warn("the \(format.rawValue) dataset has \(datasetClasses) classes, the model \(loaded.classes); scoring over the model's \(loaded.classes)")
    }
    let classNames = datasetClasses == loaded.classes ? data.classNames : nil
    let model = try Predictor(model: loaded.network, device: device).model

    let predictionsFolder = savePredictions.map { URL(fileURLWithPath: $0) }
    let total = min(data.count, limit ?? data.count)
    let step = max(1, total / 10)
    let start = Date()
    let scores = try evaluator.evaluate(
      model: model, dataset: data, numClasses: loaded.classes, limit: limit,
      progress: { done, total in
        if done % step == 0 || done == total { warn("evaluated \(done)/\(total) images", prefix: "") }
      },
      predictions: predictionsFolder.map { folder -> (Int, Sample, Image) throws -> Void in
        { _, sample, labels in
          let url = folder.appendingPathComponent("\(sample.name).png")
          try createFolder(url.deletingLastPathComponent())
          try ImageIO.writePNG(labels, to: url, palette: data.colormap)
        }
      })

    print("model: \(loaded.name) (\(loaded.classes) classes), weights: \(loaded.weights?.path ?? "none")")
    print("data: \(format.rawValue) \(data.split) at \(data.root.path), \(total) images")
    print("inference: scales \(evaluator.scales.map { "\($0)" }.joined(separator: ",")), flip \(evaluator.flip ? "yes" : "no"), "
      + "crop \(evaluator.crop.map { "\($0.height)x\($0.width)" } ?? "none"), \(String(format: "%.1f", Date().timeIntervalSince(start))) s on \(device)")
    print(scores.table(classNames: classNames ?? []))
    if let jsonURL {
      do {
        try scores.jsonData(classNames: classNames).write(to: jsonURL, options: .atomic)
      } catch {
        throw CommandError("\(jsonURL.path): cannot be written (\(error.localizedDescription))")
      }
      print("scores: \(jsonURL.path)")
    }
    if let predictionsFolder { print("predictions: \(predictionsFolder.path)") }
  }
}

// MARK: - Shared by eval and predict

/// Where the model comes from: a run folder, or a name and a weight file.
struct ModelArguments: ParsableArguments {
  @Option(name: .customLong("run"), help: "Run folder: model, classes and settings from its config.yaml, weights from its latest checkpoint.")
  var runFolder: String?

  @Option(help: "Model name (see `segkit models`; default: the run's).")
  var model: String?

  @Option(help: "Weights: a full model checkpoint, a SegKit training checkpoint or an encoder's ImageNet checkpoint (.pth or .safetensors).")
  var weights: String?

  @Option(help: "Number of classes (default: the run's, else what the checkpoint was trained for, else the dataset's (eval) or 21).")
  var classes: Int?

  /// The run's configuration, when there is a run.
  func runConfig() throws -> TrainingConfig? {
    try runFolder.map { try InferenceModel.runConfig(URL(fileURLWithPath: $0)) }
  }

  /// The model with its weights loaded, not yet on a device.
  func load(config: TrainingConfig?, defaultClasses: Int?, requireWeights: Bool) throws -> LoadedModel {
    guard let name = model ?? config?.model else { throw ValidationError("--model is needed without --run") }
    if let classes, classes < 1 { throw ValidationError("--classes must be at least 1, got \(classes)") }
    let weightsURL = try weights.map { URL(fileURLWithPath: $0) }
      ?? runFolder.map { try InferenceModel.latestCheckpoint(URL(fileURLWithPath: $0), warning: { warn($0) }) }
    if requireWeights && weightsURL == nil {
      throw ValidationError("no weights: pass --weights FILE or --run RUN_DIR")
    }
    let stored = try weightsURL.map { try InferenceModel.readWeights($0) }
    let trained = try stored.flatMap { try InferenceModel.trainedClasses($0, model: name) }
    let count = classes ?? config?.numClasses ?? trained ?? defaultClasses ?? 21
    let network = try InferenceModel.build(name, classes: count, config: config, weights: stored, from: weightsURL)
    return LoadedModel(network: network, name: name, classes: count, weights: weightsURL, config: config)
  }
}

struct LoadedModel {
  let network: any SegmentationNetwork
  let name: String
  let classes: Int
  let weights: URL?
  let config: TrainingConfig?
}

/// How each image is run: scales, flips and sliding windows.
struct InferenceArguments: ParsableArguments {
  @Option(help: "Comma-separated input scales, e.g. 0.5,0.75,1.0,1.25,1.5,1.75 (default: the run's eval_scales, else 1).")
  var scales: String?

  @Flag(inversion: .prefixedNo, help: "Also run left-right flipped images (default: the run's add_flipped_images, else no).")
  var flip: Bool?

  @Option(help: "Sliding-window size H,W (or N for N,N) for larger images, or none (default: the run's eval_crop_size, else none).")
  var crop: String?

  @Option(help: "Fraction of a sliding window shared with its neighbour, in [0, 1) (default: 1/3).")
  var overlap: Double?

  func evaluator(config: TrainingConfig?, device: Device) throws -> Evaluator {
    let scales = try self.scales.map { text -> [Double] in
      let values = text.split(separator: ",", omittingEmptySubsequences: false).map {
        Double($0.trimmingCharacters(in: .whitespaces))
      }
      guard !values.isEmpty, values.allSatisfy({ $0 != nil && $0! > 0 && $0!.isFinite }) else {
        throw ValidationError("--scales must be positive numbers separated by commas, got '\(text)'")
      }
      return values.map { $0! }
    }
    var window = config?.evalCropSize.map { Size2($0[0], $0[1]) }
    if let crop {
      let parts = crop.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
      switch (crop.lowercased(), parts.count) {
      case ("none", _): window = nil
      case (_, 1) where (parts[0] ?? 0) > 0: window = Size2(parts[0]!, parts[0]!)
      case (_, 2) where (parts[0] ?? 0) > 0 && (parts[1] ?? 0) > 0: window = Size2(parts[0]!, parts[1]!)
      default: throw ValidationError("--crop must be H,W (positive), N or none, got '\(crop)'")
      }
    }
    let overlap = self.overlap ?? 1.0 / 3
    guard overlap >= 0 && overlap < 1 else { throw ValidationError("--overlap must be in [0, 1), got \(overlap)") }
    return try Evaluator(
      scales: scales ?? config?.evalScales ?? [1], flip: flip ?? config?.addFlippedImages ?? false, crop: window,
      overlap: overlap, device: device)
  }
}

/// "auto" is the first CUDA device, else the CPU; any other device must be present.
func resolveDevice(_ text: String) throws -> Device {
  if text.lowercased() == "auto" { return Device.cudaDeviceCount > 0 ? .cuda(0) : .cpu }
  let device = try Device(parsing: text)
  guard device.isAvailable else {
    throw ValidationError("--device \(text) is not available here (available: \(Device.available.map(\.description).joined(separator: ", ")))")
  }
  return device
}

/// Checks before any work that `path` can be written later: its folder exists (or
/// can be made) and it is not a folder itself.
func writableFile(_ path: String, option: String) throws -> URL {
  let url = URL(fileURLWithPath: path)
  var isDirectory: ObjCBool = false
  if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
    throw ValidationError("\(option) \(path) is a folder, not a file")
  }
  try createFolder(url.deletingLastPathComponent())
  guard FileManager.default.isWritableFile(atPath: url.deletingLastPathComponent().path) else {
    throw ValidationError("\(option) \(path): its folder is not writable")
  }
  return url
}

func createFolder(_ url: URL) throws {
  do {
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
  } catch {
    throw CommandError("\(url.path): cannot create the folder (\(error.localizedDescription))")
  }
}

/// A line on standard error (warnings and progress stay out of the results on standard output).
func warn(_ message: String, prefix: String = "warning: ") {
  FileHandle.standardError.write(Data("\(prefix)\(message)\n".utf8))
}
