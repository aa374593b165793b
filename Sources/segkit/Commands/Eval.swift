import ArgumentParser
import Foundation
import SegKitInference

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

  @OptionGroup var device: DeviceArgument

  func run() throws {
    Torch.keepFreedMemory()  // activations reuse freed memory from image to image instead of faulting fresh pages in
    let run = try source.run(for: "segkit eval", tasks: [.semantic, .foreground])
    let defaults = run?.defaults
    let device = try self.device.resolved()
    let settings = try inference.settings(defaults: defaults)
    let precision = try inference.chosenPrecision()
    if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, got \(limit)") }
    let jsonURL = try json.map { try writableFile($0, option: "--json") }

    guard let datasetName = dataset ?? defaults?.dataset else {
      throw ValidationError("--dataset is needed without --run")
    }
    let format = try DatasetFormat(named: datasetName)
    guard let root = datasetDir ?? defaults?.datasetDir else {
      throw ValidationError("--dataset-dir is needed\(defaults == nil ? " without --run" : ": the run names no dataset folder")")
    }
    let data = try SegmentationDataset.open(format, root: URL(fileURLWithPath: root), split: split ?? defaults?.valSplit ?? "val")
    let datasetClasses = data.openEndedClasses || data.classNames.isEmpty ? nil : data.classNames.count
    let loaded = try source.load(run: run?.layout, fallbackClasses: datasetClasses, requireWeights: true)
    let manifest = loaded.manifest
    if manifest.task == .semantic, let datasetClasses, datasetClasses != manifest.classes {
      warn("the \(format.rawValue) dataset has \(datasetClasses) classes, the model \(manifest.classes); scoring over the model's \(manifest.classes)")
    }
    let classNames = manifest.task == .foreground
      ? ["background", "foreground"] : datasetClasses == manifest.classes ? data.classNames : nil
    let segmenter = try ImageSegmenter(
      model: loaded.network, settings: settings, device: device, normalization: manifest.normalization)
    // A reduced precision (or measured kernels) is evaluated beside fp32's default path,
    // image by image, so its cost in accuracy and its speed-up are measured rather than assumed.
    let reduced = precision == .fp32 && !inference.measureKernels ? nil : try ImageSegmenter(
      model: source.load(run: run?.layout, fallbackClasses: datasetClasses, requireWeights: true).network,
      settings: settings, device: device, normalization: manifest.normalization, precision: precision,
      calibration: precision == .int8 ? try calibrationImages(format: format, root: root, split: defaults?.trainSplit ?? "train", evaluated: data) : [],
      measuringKernels: inference.measureKernels)

    let predictionsFolder = savePredictions.map { URL(fileURLWithPath: $0) }
    let total = min(data.count, limit ?? data.count)
    let step = max(1, total / 10)
    let start = Date()
    let progress: (Int, Int) -> Void = { done, total in
      if done % step == 0 || done == total { warn("evaluated \(done)/\(total) images", prefix: "") }
    }
    let writePrediction = predictionsFolder.map { folder -> (Int, Sample, Image) throws -> Void in
      { _, sample, labels in
        let url = folder.appendingPathComponent("\(sample.name).png")
        try createFolder(url.deletingLastPathComponent())
        try ImageIO.writePNG(labels, to: url, palette: data.colormap)
      }
    }
    let ignoreIndex = defaults?.ignoreLabel ?? Int(voidLabel)
    var comparison: PrecisionComparison?
    let scores: SegmentationScores
    if let reduced {
      comparison = try Evaluation.compare(
        reference: segmenter, reduced: reduced, task: manifest.task, dataset: data, numClasses: manifest.labelCount,
        ignoreIndex: ignoreIndex, limit: limit, progress: progress, predictions: writePrediction)
      scores = comparison!.reduced
    } else {
      scores = try Evaluation.run(
        segmenter, task: manifest.task, dataset: data, numClasses: manifest.labelCount, ignoreIndex: ignoreIndex,
        limit: limit, progress: progress, predictions: writePrediction)
    }

    print("model: \(manifest.model) (\(manifest.task == .foreground ? "foreground" : "\(manifest.classes) classes")), weights: \(loaded.weights?.path ?? "none")")
    print("data: \(format.rawValue) \(data.split) at \(data.root.path), \(total) images")
    print("inference: scales \(settings.scales.map { "\($0)" }.joined(separator: ",")), flip \(settings.flip ? "yes" : "no"), "
      + "crop \(settings.crop.map { "\($0.height)x\($0.width)" } ?? "none"), \(String(format: "%.1f", Date().timeIntervalSince(start))) s on \(device)")
    if let comparison { print("precision: \(comparison.summary)") }
    print(scores.table(classNames: classNames ?? []))
    if let jsonURL {
      try write(try Evaluation.json(scores, classNames: classNames, comparison: comparison), to: jsonURL)
      print("scores: \(jsonURL.path)")
    }
    if let predictionsFolder { print("predictions: \(predictionsFolder.path)") }
  }

  /// The first --calibration-images images of the training split, or, when it cannot
  /// be opened, of the evaluated one (said on stderr: calibrating on the images scored
  /// flatters int8 slightly).
  func calibrationImages(format: DatasetFormat, root: String, split: String, evaluated: SegmentationDataset) throws -> [Image] {
    var source = evaluated
    if split != evaluated.split, let training = try? SegmentationDataset.open(format, root: URL(fileURLWithPath: root), split: split) {
      source = training
    } else {
      warn("int8 calibrates on the evaluated \(evaluated.split) split: no \(split) split to take images from")
    }
    return try (0..<min(source.count, inference.calibrationImages)).map { try source.loadSample(at: $0).image }
  }
}
