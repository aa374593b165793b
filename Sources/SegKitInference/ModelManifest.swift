import Foundation

/// What inference, export and serving need to know about a trained model, kept
/// beside its weights (`model.json` in a run folder): how to build it, what its
/// outputs mean, how its input is normalised and how the run meant it to be run
/// (`inference`). Written at training time; inference reads no training configuration.
public struct ModelManifest: Codable, Equatable, Sendable {
  /// What the model predicts: one class per pixel, or foreground against background.
  public enum Task: String, Codable, Sendable, CaseIterable {
    /// `classes` logits per pixel; the label is their argmax.
    case semantic
    /// One logit per pixel; foreground where it is positive (probability above ½).
    case foreground
    /// Two frames in, the optical flow from the first to the second out (FlowNetS).
    case flow
    /// Frames in, object masks out, read from a memory of past frames (XMem): `segkit vos segment --method xmem`.
    case memory
  }

  public var model: String
  public var task: Task
  /// Output channels of the model (1 for foreground models).
  public var classes: Int
  /// Names of the label values the model's predictions take (background and
  /// foreground for a foreground model); may be empty.
  public var classNames: [String]
  public var normalization: InputNormalization
  /// RGB colour of each label value, as many as `classNames` or more; may be empty.
  public var colors: [[UInt8]]
  // Architecture settings that change the state dict or the forward pass.
  public var outputStride: Int?
  public var atrousRates: [Int]?
  public var auxiliaryHead: Bool?
  public var separable: Bool
  /// How the run evaluates and uses the model; nil in runs made before SegKit wrote it.
  public var inference: InferenceDefaults?

  /// The training run's choices that inference follows unless told otherwise.
  public struct InferenceDefaults: Codable, Equatable, Sendable {
    /// Evaluation: input scales, flipped copies, sliding window [height, width].
    public var scales: [Double]
    public var flip: Bool
    public var crop: [Int]?
    /// The dataset the run was trained on: its kind (voc, cityscapes, …), folder and splits.
    public var dataset: String?
    public var datasetDir: String?
    public var trainSplit: String?
    public var valSplit: String?
    public var ignoreLabel: Int?
    /// A warp-path flow run (DVSNet): where key logits are warped and the flow input's scale.
    public var warpAt: String?
    public var flowInputScale: Double?
    /// The segmentation run whose logits the warp path was trained on (absolute path):
    /// DVSNet's scale field is learnt for that network's logits only.
    public var segmentationRun: String?
    /// A MaskRNN run: how its flows are computed (dis, flownet2s or flownets_thin), DIS's
    /// preset and a flow network's weights.
    public var flowMethod: String?
    public var flowPreset: String?
    public var flowWeights: String?
    /// A memory run (XMem): its inference settings.
    public var memory: XMemSettings?

    public init(
      scales: [Double] = [1], flip: Bool = false, crop: [Int]? = nil, dataset: String? = nil, datasetDir: String? = nil,
      trainSplit: String? = nil, valSplit: String? = nil, ignoreLabel: Int? = nil, warpAt: String? = nil,
      flowInputScale: Double? = nil, flowMethod: String? = nil, flowPreset: String? = nil, flowWeights: String? = nil,
      segmentationRun: String? = nil, memory: XMemSettings? = nil
    ) {
      self.memory = memory
      self.scales = scales
      self.flip = flip
      self.crop = crop
      self.dataset = dataset
      self.datasetDir = datasetDir
      self.trainSplit = trainSplit
      self.valSplit = valSplit
      self.ignoreLabel = ignoreLabel
      self.warpAt = warpAt
      self.flowInputScale = flowInputScale
      self.flowMethod = flowMethod
      self.flowPreset = flowPreset
      self.flowWeights = flowWeights
      self.segmentationRun = segmentationRun
    }
  }

  public init(
    model: String, task: Task = .semantic, classes: Int, classNames: [String] = [], normalization: InputNormalization = .imagenet,
    colors: [[UInt8]] = [], outputStride: Int? = nil, atrousRates: [Int]? = nil, auxiliaryHead: Bool? = nil,
    separable: Bool = false
  ) {
    self.model = model
    self.task = task
    self.classes = classes
    self.classNames = classNames
    self.normalization = normalization
    self.colors = colors
    self.outputStride = outputStride
    self.atrousRates = atrousRates
    self.auxiliaryHead = auxiliaryHead
    self.separable = separable
  }

  public static let fileName = "model.json"

  /// Label values a prediction takes: the classes, or background and foreground.
  public var labelCount: Int { task == .foreground ? 2 : classes }

  /// The colormap of the manifest's names and colours (the rest from Pascal's).
  public func colormap() throws -> Colormap {
    let colors = try self.colors.prefix(256).map { rgb -> (UInt8, UInt8, UInt8) in
      guard rgb.count == 3 else { throw InferenceError("\(model) manifest: a colour has \(rgb.count) values, not 3") }
      return (rgb[0], rgb[1], rgb[2])
    }
    do {
      return try Colormap(name: model, classNames: classNames, colors: colors)
    } catch {
      throw InferenceError("\(model) manifest: \(error)")
    }
  }

  /// The colours of a colormap's first `count` entries, as the manifest stores them.
  public static func colors(of colormap: Colormap, count: Int) -> [[UInt8]] {
    colormap.colors.prefix(max(0, min(count, 256))).map { [$0.0, $0.1, $0.2] }
  }

  public func write(to url: URL) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    do {
      try AtomicFile.write(encoder.encode(self), to: url)
    } catch {
      throw InferenceError("cannot write the model manifest \(url.path): \(error.localizedDescription)")
    }
  }

  public static func read(from url: URL) throws -> ModelManifest {
    let data: Data
    do {
      data = try Data(contentsOf: url)
    } catch {
      throw InferenceError("cannot read the model manifest \(url.path): \(error.localizedDescription)")
    }
    let manifest: ModelManifest
    do {
      manifest = try JSONDecoder().decode(ModelManifest.self, from: data)
    } catch {
      throw InferenceError("\(url.path): not a valid model manifest (\(error))")
    }
    guard manifest.classes >= 1, manifest.classes <= 256 else {
      throw InferenceError("\(url.path): 'classes' must be between 1 and 256 (label maps hold 8-bit ids), got \(manifest.classes)")
    }
    if let stride = manifest.outputStride, ![8, 16, 32].contains(stride) {
      throw InferenceError("\(url.path): 'outputStride' must be 8, 16 or 32, got \(stride)")
    }
    if let rates = manifest.atrousRates, rates.isEmpty || rates.count > 16 || !rates.allSatisfy({ (1...1024).contains($0) }) {
      throw InferenceError("\(url.path): 'atrousRates' must be 1 to 16 rates between 1 and 1024, got \(rates)")
    }
    guard manifest.normalization.mean.count == 3, manifest.normalization.std.count == 3,
          manifest.normalization.std.allSatisfy({ $0 != 0 && $0.isFinite }), manifest.normalization.pixelDivisor > 0
    else {
      throw InferenceError("\(url.path): 'normalization' needs 3 means, 3 non-zero standard deviations and a positive pixel divisor")
    }
    if let defaults = manifest.inference {
      guard !defaults.scales.isEmpty, defaults.scales.count <= 16, defaults.scales.allSatisfy({ $0 > 0 && $0 <= 16 }) else {
        throw InferenceError("\(url.path): 'inference.scales' must be 1 to 16 factors in (0, 16], got \(defaults.scales)")
      }
      if let crop = defaults.crop, crop.count != 2 || !crop.allSatisfy({ (1...65536).contains($0) }) {
        throw InferenceError("\(url.path): 'inference.crop' must be [height, width], each 1 to 65536, got \(crop)")
      }
      if let scale = defaults.flowInputScale, !(scale > 0 && scale <= 16) {
        throw InferenceError("\(url.path): 'inference.flowInputScale' must be in (0, 16], got \(scale)")
      }
      if let ignore = defaults.ignoreLabel, ignore < 0 {
        throw InferenceError("\(url.path): 'inference.ignoreLabel' must not be negative, got \(ignore)")
      }
      if let warp = defaults.warpAt, WarpPath.Resolution(rawValue: warp) == nil {
        throw InferenceError("\(url.path): 'inference.warpAt' must be flow or output, got '\(warp)'")
      }
    }
    return manifest
  }
}
