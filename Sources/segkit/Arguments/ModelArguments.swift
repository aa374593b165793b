import ArgumentParser
import Foundation
import SegKitInference

/// Where the model comes from: a run folder, or a name and a weight file.
struct ModelArguments: ParsableArguments {
  @Option(name: .customLong("run"), help: "Run folder: the model and its inference defaults from its model.json, weights from its latest checkpoint.")
  var runFolder: String?

  @Option(help: "Model name (see `segkit models`; default: the run's).")
  var model: String?

  @Option(help: "Weights: a full model checkpoint, a SegKit training checkpoint or an encoder's ImageNet checkpoint (.pth or .safetensors).")
  var weights: String?

  @Option(help: "Number of classes (default: the run's, else what the checkpoint was trained for, else the dataset's (eval) or 21).")
  var classes: Int?

  /// The run folder and how its training meant the model to be run, when there is a run.
  /// `task`: what the command runs; a run of another task is refused with the command
  /// that serves it.
  func run(for command: String, tasks: Set<ModelManifest.Task>) throws -> (layout: RunLayout, defaults: ModelManifest.InferenceDefaults)? {
    guard let runFolder else { return nil }
    let layout = try RunLayout.existing(URL(fileURLWithPath: runFolder))
    if FileManager.default.fileExists(atPath: layout.manifestURL.path) {
      let manifest = try layout.manifest()
      guard tasks.contains(manifest.task) else {
        throw ValidationError("--run \(runFolder): a \(manifest.task.rawValue) run (\(manifest.model)); \(command) takes \(tasks.map(\.rawValue).sorted().joined(separator: " or ")) runs. \(Self.serving(manifest.task))")
      }
    }
    return (layout, try inferenceDefaults(of: layout))
  }

  /// The commands that take a run of `task`.
  static func serving(_ task: ModelManifest.Task) -> String {
    switch task {
    case .semantic: return "Its commands: segkit eval, predict, export, dvs."
    case .foreground: return "Its commands: segkit vos segment --parent RUN, segkit predict, export."
    case .flow: return "Its commands: segkit flow compute --weights RUN/model.safetensors --method flownets_thin, segkit dvs … --flow RUN."
    case .memory: return "Its commands: segkit vos segment --method xmem --weights RUN/model.safetensors."
    }
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

  @Option(help: "Sliding-window size HxW (height first; N for NxN) for larger images, or none (default: the run's, else none).")
  var crop: String?

  @Option(help: "Fraction of a sliding window shared with its neighbour, in [0, 1) (default: 1/3).")
  var overlap: Double?

  @Option(help: ArgumentHelp(
    "Arithmetic: fp32 (exact, the default), bf16 (bfloat16 weights and activations; CPUs with AVX-512 BF16 or AMX, or CUDA) or int8 (CPU; convolutions quantised after calibration).",
    discussion: "eval reports the change in mIoU, the largest score difference and the speed-up against fp32."))
  var precision: String = "fp32"

  @Option(help: "Images int8 calibrates on: eval takes the first of the training split, predict the first of its input.")
  var calibrationImages: Int = 8

  @Flag(help: ArgumentHelp(
    "fp32 or int8 on the CPU: each 3x3 convolution runs the faster of oneDNN's kernel and NNPACK's float32 Winograd kernel, timed on the first image of each size.",
    discussion: "Winograd rounds less exactly (outputs differ in about the fifth significant digit); eval reports the change against the default kernels."))
  var measureKernels = false

  /// --precision, checked.
  func chosenPrecision() throws -> InferencePrecision {
    guard let chosen = InferencePrecision(rawValue: precision) else {
      throw ValidationError("--precision must be fp32, bf16 or int8, got '\(precision)'")
    }
    guard (1...256).contains(calibrationImages) else {
      throw ValidationError("--calibration-images must be 1 to 256, got \(calibrationImages)")
    }
    if measureKernels && chosen == .bf16 {
      throw ValidationError("--measure-kernels chooses between oneDNN's fp32 or int8 kernels and Winograd's: not with --precision bf16")
    }
    return chosen
  }

  /// These arguments over the run's evaluation settings.
  func settings(defaults: ModelManifest.InferenceDefaults?) throws -> InferenceSettings {
    let scales = try self.scales.map { text -> [Double] in
      let values = text.split(separator: ",", omittingEmptySubsequences: false).compactMap {
        Double($0.trimmingCharacters(in: .whitespaces))
      }
      guard !values.isEmpty, values.count == text.split(separator: ",", omittingEmptySubsequences: false).count,
            values.allSatisfy({ $0 > 0 && $0.isFinite })
      else { throw ValidationError("--scales must be positive numbers separated by commas, got '\(text)'") }
      return values
    }
    var window = defaults?.crop.map { Size2($0[0], $0[1]) }
    if let crop {
      if crop.contains(",") { deprecated("--crop H,W", use: "--crop HxW") }
      window = crop.lowercased() == "none" ? nil : try parseSize(crop.replacingOccurrences(of: ",", with: "x"), option: "--crop")
    }
    let overlap = self.overlap ?? 1.0 / 3
    guard overlap >= 0 && overlap < 1 else { throw ValidationError("--overlap must be in [0, 1), got \(overlap)") }
    return try InferenceSettings(
      scales: scales ?? defaults?.scales ?? [1], flip: flip ?? defaults?.flip ?? false, crop: window,
      overlap: overlap)
  }
}

/// A size written HxW (height first) or N for a square, checked positive.
func parseSize(_ text: String, option: String) throws -> Size2 {
  let parts = text.lowercased().split(separator: "x", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
  switch parts.count {
  case 1: if let n = parts[0], n > 0 { return Size2(n, n) }
  case 2: if let h = parts[0], let w = parts[1], h > 0, w > 0 { return Size2(h, w) }
  default: break
  }
  throw ValidationError("\(option) must be HxW (height first, positive) or N for NxN, got '\(text)'")
}

/// `--device`: auto (the first CUDA device, else the CPU) by default in every command.
struct DeviceArgument: ParsableArguments {
  @Option(help: "Device: auto (the first CUDA device, else the CPU), cpu, cuda, cuda:N or mps.")
  var device = "auto"

  func resolved() throws -> Device { try resolveDevice(device) }
}
