import ArgumentParser
import Foundation
import SegKitInference
import SegKitTraining

/// Where the model comes from: a run folder, or a name and a weight file.
struct ModelArguments: ParsableArguments {
  @Option(name: .customLong("run"), help: "Run folder: the model from its model.json, weights from its latest checkpoint, defaults from its config.yaml.")
  var runFolder: String?

  @Option(help: "Model name (see `segkit models`; default: the run's).")
  var model: String?

  @Option(help: "Weights: a full model checkpoint, a SegKit training checkpoint or an encoder's ImageNet checkpoint (.pth or .safetensors).")
  var weights: String?

  @Option(help: "Number of classes (default: the run's, else what the checkpoint was trained for, else the dataset's (eval) or 21).")
  var classes: Int?

  /// The run folder and its training configuration, when there is a run.
  func run() throws -> (layout: RunLayout, config: TrainingConfig)? {
    guard let runFolder else { return nil }
    let layout = try RunLayout.existing(URL(fileURLWithPath: runFolder))
    return (layout, try TrainingConfig.resolve(file: layout.configURL))
  }

  /// The model with its weights loaded, not yet on a device; `fallbackClasses` is
  /// the dataset's class count where there is a dataset.
  func load(run: RunLayout?, fallbackClasses: Int?, requireWeights: Bool) throws -> LoadedModel {
    if let classes, !(1...256).contains(classes) { throw ValidationError("--classes must be between 1 and 256 (label maps hold 8-bit ids), got \(classes)") }
    let weightsURL = weights.map { URL(fileURLWithPath: $0) }
    if let run {
      if let model, model != (try run.manifest()).model {
        throw ValidationError("--model \(model) differs from the run's model; leave it out with --run")
      }
      return try ModelLoader.load(run: run, weights: weightsURL, classes: classes, warning: { warn($0) })
    }
    guard let model else { throw ValidationError("--model is needed without --run") }
    if requireWeights && weightsURL == nil { throw ValidationError("no weights: pass --weights FILE or --run RUN_DIR") }
    return try ModelLoader.load(name: model, weights: weightsURL, classes: classes, fallbackClasses: fallbackClasses)
  }
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

  @Option(help: ArgumentHelp(
    "Arithmetic: fp32 (exact, the default), bf16 (bfloat16 weights and activations; CPUs with AVX-512 BF16 or AMX, or CUDA) or int8 (CPU; convolutions quantised after calibration).",
    discussion: "eval reports the change in mIoU, the largest score difference and the speed-up against fp32."))
  var precision: String = "fp32"

  @Option(help: "Images int8 calibrates on: eval takes the first of the training split, predict the first of its input.")
  var calibrationImages: Int = 8

  /// --precision, checked.
  func chosenPrecision() throws -> InferencePrecision {
    guard let chosen = InferencePrecision(rawValue: precision) else {
      throw ValidationError("--precision must be fp32, bf16 or int8, got '\(precision)'")
    }
    guard (1...256).contains(calibrationImages) else {
      throw ValidationError("--calibration-images must be 1 to 256, got \(calibrationImages)")
    }
    return chosen
  }

  /// These arguments over the run's evaluation settings.
  func settings(config: TrainingConfig?) throws -> InferenceSettings {
    let scales = try self.scales.map { text -> [Double] in
      let values = text.split(separator: ",", omittingEmptySubsequences: false).compactMap {
        Double($0.trimmingCharacters(in: .whitespaces))
      }
      guard !values.isEmpty, values.count == text.split(separator: ",", omittingEmptySubsequences: false).count,
            values.allSatisfy({ $0 > 0 && $0.isFinite })
      else { throw ValidationError("--scales must be positive numbers separated by commas, got '\(text)'") }
      return values
    }
    var window = config?.evaluation.evalCropSize.map { Size2($0[0], $0[1]) }
    if let crop {
      let parts = crop.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) ?? 0 }
      switch (crop.lowercased(), parts.count) {
      case ("none", _): window = nil
      case (_, 1) where parts[0] > 0: window = Size2(parts[0], parts[0])
      case (_, 2) where parts[0] > 0 && parts[1] > 0: window = Size2(parts[0], parts[1])
      default: throw ValidationError("--crop must be H,W (positive), N or none, got '\(crop)'")
      }
    }
    let overlap = self.overlap ?? 1.0 / 3
    guard overlap >= 0 && overlap < 1 else { throw ValidationError("--overlap must be in [0, 1), got \(overlap)") }
    return try InferenceSettings(
      scales: scales ?? config?.evaluation.evalScales ?? [1], flip: flip ?? config?.evaluation.addFlippedImages ?? false, crop: window,
      overlap: overlap)
  }
}

/// A device named on the command line, checked to be present.
func resolveDevice(_ text: String) throws -> Device {
  do { return try Device.resolve(text) } catch let error as InferenceError { throw ValidationError("--device: \(error.message)") }
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
