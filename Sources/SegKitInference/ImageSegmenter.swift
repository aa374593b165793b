import Foundation

/// How each image is run: at several scales, with left-right flips, and in
/// overlapping windows when an image is larger than a crop.
///
/// Combining the passes follows DeepLab's `predict_labels_multi_scale`
/// (`eval_scales`, `add_flipped_images`): each pass's logits are resized
/// bilinearly to the image's size (a flipped pass is flipped back first), turned
/// into probabilities (softmax; sigmoid for a one-channel foreground model), and
/// the probabilities are averaged over the passes; the label is their argmax (or
/// probability above ½). Averaging probabilities rather than logits keeps one
/// over-confident pass from outvoting the others. Two departures, both PyTorch
/// conventions: resizing uses `align_corners=False` (DeepLab's TF1 code uses
/// `align_corners=True`), and a scale `s` gives an input of round(H·s) × round(W·s)
/// rather than DeepLab's (H − 1)·s + 1.
///
/// With a crop, each pass runs in windows of the crop's size that overlap by
/// `overlap` of it (mmsegmentation's `slide_inference`: windows start every
/// round(crop·(1 − overlap)) pixels, the last one flush with the border); the
/// logits of overlapping windows are averaged. A side no larger than the crop is
/// covered by one window of the image's own length.
public struct InferenceSettings: Sendable, Equatable {
  /// Input scales, 1 being the image's own size.
  public var scales: [Double]
  /// Also run each scale on the left-right mirrored image.
  public var flip: Bool
  /// Sliding-window size; nil runs whole images.
  public var crop: Size2?
  /// Fraction of a window shared with the next, in [0, 1).
  public var overlap: Double

  public init(scales: [Double] = [1], flip: Bool = false, crop: Size2? = nil, overlap: Double = 1.0 / 3) throws {
    guard !scales.isEmpty, scales.allSatisfy({ $0 > 0 && $0 <= Self.maximumScale }) else {
      throw InferenceError("evaluation scales must be in (0, \(Self.maximumScale)], got \(scales)")
    }
    if let crop, crop.height < 1 || crop.width < 1 || crop.height > Self.maximumSide || crop.width > Self.maximumSide {
      throw InferenceError("evaluation crop must be 1 to \(Self.maximumSide) pixels each way, got \(crop.height)×\(crop.width)")
    }
    guard overlap >= 0, overlap < 1 else {
      throw InferenceError("window overlap must be in [0, 1), got \(overlap)")
    }
    self.scales = scales
    self.flip = flip
    self.crop = crop
    self.overlap = overlap
  }

  /// The largest scale and window side taken (larger ones would only exhaust memory).
  public static let maximumScale = 16.0
  public static let maximumSide = 16_384

  /// One plain pass: the image's own size, no flip, no windows.
  public static let single = try! InferenceSettings()

  /// Forward passes per image.
  public var passes: Int { scales.count * (flip ? 2 : 1) }

  /// Whether the scores are the model's own logits (one pass at scale 1, no windows).
  public var isSinglePlainPass: Bool { passes == 1 && scales == [1] && crop == nil }

  /// Where windows start along a side: every round(window·(1 − overlap)) pixels,
  /// the last one moved back to end at the border; one window when the side fits.
  public static func windowStarts(length: Int, window: Int, overlap: Double) -> [Int] {
    guard length > window else { return [0] }
    let stride = max(1, Int((Double(window) * (1 - overlap)).rounded()))
    let count = (length - window + stride - 1) / stride + 1
    return (0..<count).map { min($0 * stride, length - window) }
  }

  /// round(H·s) × round(W·s), at least one pixel.
  static func scaled(_ size: Size2, by scale: Double) -> Size2 {
    Size2(max(1, Int((Double(size.height) * scale).rounded())), max(1, Int((Double(size.width) * scale).rounded())))
  }
}

/// A model ready to segment images: on its device, with its input normalisation
/// and the inference settings. `segkit predict`, `segkit eval`, the trainer's
/// validation and sequence segmenters all run images through one of these.
public final class ImageSegmenter {
  public let model: any SegmentationNetwork
  public let settings: InferenceSettings
  public let device: Device
  public let normalization: InputNormalization

  /// The arithmetic the model runs in (fp32 unless asked otherwise).
  public let precision: InferencePrecision
  /// Whether each 3×3 convolution runs the faster of oneDNN's (fp32 or int8) and
  /// NNPACK's Winograd kernels, measured on the first image of each size (CPU).
  public let measuresKernels: Bool
  /// `estimatedBytes`'s measurement, made once.
  private var memoryGrowth: (growth: MemoryGrowth, classes: Int)?

  /// Puts `model` on `device` in evaluation mode and, with `optimize`, in its fast
  /// inference form (batch norm folded, channels-last; see `optimizeForInference`) at
  /// `precision`; int8 (CPU only) calibrates on `calibration`, a few images like those
  /// to come.
  public init(
    model: any SegmentationNetwork, settings: InferenceSettings = .single, device: Device = .cpu,
    normalization: InputNormalization = .imagenet, optimize: Bool = true, precision: InferencePrecision = .fp32,
    calibration: [Image] = [], measuringKernels: Bool = false
  ) throws {
    if precision != .fp32 && !optimize { throw InferenceError("\(precision.rawValue) inference needs the optimised path") }
    if measuringKernels && (precision == .bf16 || device != .cpu || !optimize) {
      throw InferenceError("measured kernels choose between the CPU's fp32 or int8 kernels on the optimised path, not \(precision.rawValue) on \(device)")
    }
    if precision == .int8 && device != .cpu { throw InferenceError("int8 inference runs on the CPU only, not \(device)") }
    if precision == .int8 && calibration.isEmpty { throw InferenceError("int8 inference needs calibration images") }
    try model.to(device: device)
    model.eval()
    self.model = model
    self.settings = settings
    self.device = device
    self.normalization = normalization
    self.precision = precision
    measuresKernels = measuringKernels
    if optimize {
      let batches = precision == .int8 ? try calibration.map { try normalization.batch($0).to(device) } : []
      try model.optimizeForInference(precision: precision, calibration: batches, measuringKernels: measuringKernels)
    }
  }

  /// Uses `model` as it is, on the device it is already on: a model being trained
  /// gets its own module modes back after each call.
  public init(borrowing model: any SegmentationNetwork, settings: InferenceSettings = .single, device: Device,
              normalization: InputNormalization = .imagenet) {
    self.model = model
    self.settings = settings
    self.device = device
    self.normalization = normalization
    precision = .fp32
    measuresKernels = false
  }

  /// An RGB image as the model's normalised [1, 3, H, W] input, its shorter side
  /// resized to `shorterSide` when given.
  public func input(_ image: Image, shorterSide: Int? = nil) throws -> Tensor {
    var x = try normalization.batch(image)
    if let shorterSide {
      let scale = Double(shorterSide) / Double(min(image.width, image.height))
      let size = Size2(Int((Double(image.height) * scale).rounded()), Int((Double(image.width) * scale).rounded()))
      x = try x.interpolate(size: size, mode: .bilinear)
    }
    return x
  }

  /// The model's raw outputs (`out` and extras) for one plain pass, on the CPU.
  public func outputs(_ image: Image, shorterSide: Int? = nil) throws -> SegmentationOutput {
    let x = try input(image, shorterSide: shorterSide).to(device)
    let output = try inEvaluationMode { try model(x) }
    return SegmentationOutput(out: try output.out.to(.cpu), extras: try output.extras.mapValues { try $0.to(.cpu) })
  }

  /// Class scores [1, C, H, W] on the CPU at the input's size. With one pass (one
  /// scale, no flip) they are the model's logits (window-averaged with a crop,
  /// resized when the scale is not 1); with several, the mean probabilities.
  public func scores(_ image: Image, shorterSide: Int? = nil) throws -> Tensor {
    try scores(batch: input(image, shorterSide: shorterSide))
  }

  /// The same for an already normalised [1, 3, H, W] batch.
  public func scores(batch: Tensor) throws -> Tensor {
    try inEvaluationMode { try deviceScores(batch.to(device)).to(.cpu) }
  }

  /// The label map (a class, or 0/1 for foreground, per pixel) of an RGB image.
  public func labels(_ image: Image, shorterSide: Int? = nil) throws -> Image {
    try labels(fromScores: scores(image, shorterSide: shorterSide))
  }

  /// The label maps of an already normalised [N, 3, H, W] batch of images of one size,
  /// in one run of the model (a server's micro-batch). Only for a single plain pass (one
  /// scale, no flip, no windows), where each image's labels are those `labels(_:)` gives.
  public func labels(batch: Tensor) throws -> [Image] {
    guard settings.isSinglePlainPass else {
      throw InferenceError("batches run one plain pass: scales \(settings.scales), flip \(settings.flip), crop \(settings.crop.map { "\($0.height)x\($0.width)" } ?? "none")")
    }
    guard batch.shape.count == 4 else { throw InferenceError("a batch must be [N, 3, H, W], got \(batch.shape)") }
    let size = Size2(batch.shape[2], batch.shape[3])
    let scores = try inEvaluationMode { () -> Tensor in
      var out = try model(batch.to(device)).out
      if out.shape[2] != size.height || out.shape[3] != size.width { out = try out.interpolate(size: size, mode: .bilinear) }
      return try out.to(.cpu)
    }
    let labels = try labelTensor(fromScores: scores).to(.uint8)
    return try (0..<batch.shape[0]).map { try Image(tensor: labels.select(dim: 0, index: $0)) }
  }

  /// The label of each pixel of [1, C, H, W] scores: the argmax, or for one channel
  /// foreground where the logit is positive (one pass) or the probability above ½.
  public func labels(fromScores scores: Tensor) throws -> Image {
    try Image(tensor: labelTensor(fromScores: scores).squeeze(dim: 0).to(.uint8))
  }

  /// [N, H, W] int64 labels of [N, C, H, W] scores.
  public func labelTensor(fromScores scores: Tensor) throws -> Tensor {
    guard scores.shape.count == 4 else { throw InferenceError("scores must be [N, C, H, W], got \(scores.shape)") }
    if scores.shape[1] == 1 {
      return try (scores .> (settings.passes == 1 ? 0 : 0.5)).squeeze(dim: 1).to(.int64)
    }
    return try scores.argmax(dim: 1)
  }

  /// Scores on the model's device.
  func deviceScores(_ x: Tensor) throws -> Tensor {
    let shape = x.shape
    guard shape.count == 4, shape[0] == 1 else {
      throw InferenceError("inference takes one image at a time as a [1, C, H, W] batch, got shape \(shape)")
    }
    let size = Size2(shape[2], shape[3])
    var sum: Tensor?
    for scale in settings.scales {
      let scaled = scale == 1 ? x : try x.interpolate(size: InferenceSettings.scaled(size, by: scale), mode: .bilinear)
      for mirrored in settings.flip ? [false, true] : [false] {
        var out = try logits(mirrored ? scaled.flip([3]) : scaled)
        if mirrored { out = try out.flip([3]) }
        if out.shape[2] != size.height || out.shape[3] != size.width {
          out = try out.interpolate(size: size, mode: .bilinear)
        }
        if settings.passes == 1 { return out }
        let probabilities = try out.shape[1] == 1 ? out.sigmoid() : out.softmax(dim: 1)
        if let sum { try sum += probabilities } else { sum = probabilities }
      }
    }
    guard let sum else { throw InferenceError("no inference pass ran") }
    return try sum / Double(settings.passes)
  }

  /// One pass's logits at the input's size: whole, or window by window.
  private func logits(_ x: Tensor) throws -> Tensor {
    guard let crop = settings.crop else { return try model(x).out }
    let height = x.shape[2], width = x.shape[3]
    let rows = InferenceSettings.windowStarts(length: height, window: crop.height, overlap: settings.overlap)
    let columns = InferenceSettings.windowStarts(length: width, window: crop.width, overlap: settings.overlap)
    if rows.count == 1 && columns.count == 1 { return try model(x).out }
    let h = min(crop.height, height), w = min(crop.width, width)
    var sum: Tensor?
    let count = try Tensor.zeros([1, 1, height, width], device: x.device)
    for top in rows {
      for left in columns {
        let window = try x.narrow(dim: 2, start: top, length: h).narrow(dim: 3, start: left, length: w)
        let out = try model(window.contiguous()).out
        let total = try sum ?? Tensor.zeros([1, out.shape[1], height, width], device: x.device)
        try total.narrow(dim: 2, start: top, length: h).narrow(dim: 3, start: left, length: w) += out
        try count.narrow(dim: 2, start: top, length: h).narrow(dim: 3, start: left, length: w) += 1
        sum = total
      }
    }
    guard let sum else { throw InferenceError("no window to run") }
    return try sum / count
  }

  /// Runs `body` with the model in evaluation mode and without autograd, then
  /// gives every module back its own mode (a trainer may keep some in evaluation
  /// mode). Modules come parent first, so a parent's `train` is undone where a
  /// child differs.
  private func inEvaluationMode<R>(_ body: () throws -> R) throws -> R {
    let modes = model.modules().map { ($0, $0.isTraining) }
    model.eval()
    defer { for (module, training) in modes where module.isTraining != training { module.train(training) } }
    return try Torch.withInferenceMode(body)
  }
}

extension InputNormalization {
  /// An RGB image as a normalised [1, 3, H, W] float32 batch.
  public func batch(_ image: Image) throws -> Tensor {
    var x = try image.rgb().tensor()  // [3, H, W] in [0, 1]
    if pixelDivisor != 255 { x = try x * Double(255 / pixelDivisor) }
    if channelOrder == .bgr { x = try x.flip([0]) }
    let mean = try Tensor(self.mean, shape: [3, 1, 1]), std = try Tensor(self.std, shape: [3, 1, 1])
    return try ((x - mean) / std).unsqueeze(0)
  }

  /// A normalised [3, H, W] image tensor back to 8-bit RGB, for logs and viewing.
  public func image(fromNormalized x: Tensor) throws -> Image {
    let mean = try Tensor(self.mean, shape: [3, 1, 1]), std = try Tensor(self.std, shape: [3, 1, 1])
    var pixels = try x * std + mean
    if channelOrder == .bgr { pixels = try pixels.flip([0]) }
    if pixelDivisor != 255 { pixels = try pixels / Double(255 / pixelDivisor) }
    return try Image(tensor: pixels)
  }
}

extension ImageSegmenter {
  /// Heap bytes segmenting an image of `height`×`width` is estimated to take on the
  /// CPU (nil on other devices, or where the heap cannot be measured): two small
  /// passes of this segmenter measured (`MemoryGrowth`), extended to the pixels its
  /// largest scale runs, plus the image's own tensors and the multi-pass sums.
  public func estimatedBytes(height: Int, width: Int, shorterSide: Int? = nil) throws -> Int? {
    guard device == .cpu else { return nil }
    var (h, w) = (Double(height), Double(width))
    if let shorterSide {
      let scale = Double(shorterSide) / min(h, w)
      (h, w) = (h * scale, w * scale)
    }
    if memoryGrowth == nil {
      var classes = 1
      guard let growth = MemoryGrowth.measure({ size in
        let scores = try scores(batch: Tensor.zeros([1, 3, size.height, size.width]))
        classes = scores.shape[1]
        return scores
      }) else { return nil }
      memoryGrowth = (growth, classes)
    }
    guard let (growth, classes) = memoryGrowth else { return nil }
    let largest = settings.scales.max() ?? 1
    var pixels = h * w * largest * largest
    if let crop = settings.crop { pixels = min(pixels, Double(crop.height * crop.width)) }
    // The batch, its resized copy and the labels; with several passes or windows, the sums.
    let imageBytes = h * w * (24 + (settings.isSinglePlainPass ? 0 : 12 * Double(classes)))
    return growth.bytes(pixels: Int(min(pixels, 0x1p50))) + Int(min(imageBytes, 0x1p60))
  }

  /// Refuses an image whose segmenting is estimated to need more than `MemoryBudget`'s cap.
  public func checkMemory(height: Int, width: Int, shorterSide: Int? = nil, name: String) throws {
    guard let bytes = try estimatedBytes(height: height, width: width, shorterSide: shorterSide) else { return }
    try MemoryBudget.check(bytes, for: "\(name): segmenting \(width)×\(height) pixels")
  }
}
