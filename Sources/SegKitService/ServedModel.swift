import Foundation
import SegKitData
import SegKitInference

/// A semantic (or foreground) model the service answers with: loaded once from a run
/// folder, put in its fast inference form at the chosen precision, with the run's
/// inference settings and colours, exactly as `segkit predict --run RUN` runs it.
public final class ServedModel: @unchecked Sendable {
  /// The name requests use: the run folder's name.
  public let name: String
  public let manifest: ModelManifest
  public let palette: Colormap
  public let precision: InferencePrecision
  /// The run's inference settings (scales, flip, crop), the default of every request.
  public let settings: InferenceSettings
  let segmenter: ImageSegmenter

  /// The model of `run` at `precision`; int8 calibrates on `calibration`.
  public init(run: URL, device: Device = .cpu, precision: InferencePrecision = .fp32, calibration: [Image] = []) throws {
    let layout = try RunLayout.existing(run)
    let loaded = try ModelLoader.load(run: layout)
    guard loaded.manifest.task == .semantic || loaded.manifest.task == .foreground else {
      throw InferenceError("\(run.path): a \(loaded.manifest.task.rawValue) run; the service's images take semantic or foreground runs")
    }
    let defaults = loaded.manifest.inference
    settings = try InferenceSettings(scales: defaults?.scales ?? [1], flip: defaults?.flip ?? false,
                                     crop: defaults?.crop.map { Size2($0[0], $0[1]) })
    segmenter = try ImageSegmenter(model: loaded.network, settings: settings, device: device,
                                   normalization: loaded.manifest.normalization, precision: precision, calibration: calibration)
    name = run.standardizedFileURL.lastPathComponent
    manifest = loaded.manifest
    palette = loaded.manifest.colors.isEmpty ? .pascal : try loaded.manifest.colormap()
    self.precision = precision
  }

  /// The class names, as many as the label maps can hold (foreground: background, object).
  public var classNames: [String] {
    let count = manifest.labelCount
    let names = manifest.task == .foreground ? ["background", "object"] : manifest.classNames
    return (0..<count).map { $0 < names.count ? names[$0] : (($0 < palette.classNames.count) ? palette.classNames[$0] : "class \($0)") }
  }

  /// The normalised [1, 3, H, W] input of `image`.
  func input(_ image: Image) throws -> Tensor { try segmenter.input(image) }

  /// Whether requests with `settings` may share a batch (one plain pass).
  func batches(_ settings: InferenceSettings) -> Bool { settings.isSinglePlainPass }

  /// The labels of a batch of inputs of one size, in one run (plain pass only).
  func labels(batch inputs: [Tensor]) throws -> [Image] {
    try segmenter.labels(batch: inputs.count == 1 ? inputs[0] : Tensor.cat(inputs, dim: 0))
  }

  /// The labels of one image under `settings` (a request's own scales or flip).
  func labels(_ image: Image, settings: InferenceSettings) throws -> Image {
    if settings == self.settings { return try segmenter.labels(image) }
    return try ImageSegmenter(borrowing: segmenter.model, settings: settings, device: segmenter.device,
                              normalization: segmenter.normalization).labels(image)
  }
}

extension XMemSegmenters {
  /// XMem for sessions: from its weights (XMem.pth, or a memory run's model.safetensors)
  /// or from a memory run's folder, with the run's settings where there is a run, else XMem's.
  public init(serving path: URL, device: Device = .cpu) throws {
    var weights = path
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: path.path, isDirectory: &isFolder), isFolder.boolValue {
      weights = path.appendingPathComponent("model.safetensors")
    }
    try self.init(weights: weights, settings: try XMemSettings.ofRun(besideWeights: weights) ?? XMemSettings(), device: device)
  }
}
