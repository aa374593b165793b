import Foundation

/// Runs a segmentation model over whole images the way evaluation wants it:
/// at several scales, with left-right flips, and in overlapping windows when an
/// image is larger than a crop. Used by `segkit eval`, `segkit predict` and the
/// trainer's validation.
///
/// Combining the passes follows DeepLab's `predict_labels_multi_scale`
/// (`eval_scales`, `add_flipped_images`): each pass's logits are resized
/// bilinearly to the image's size (a flipped pass is flipped back first), turned
/// into softmax probabilities, and the probabilities are averaged over the passes;
/// the label is their argmax. Averaging probabilities rather than logits keeps one
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
public struct Evaluator: Sendable {
  /// Input scales, 1 being the image's own size.
  public var scales: [Double]
  /// Also run each scale on the left-right mirrored image.
  public var flip: Bool
  /// Sliding-window size; nil runs whole images.
  public var crop: Size2?
  /// Fraction of a window shared with the next, in [0, 1).
  public var overlap: Double
  /// Where inputs go; the model must already be there.
  public var device: Device

  public init(
    scales: [Double] = [1], flip: Bool = false, crop: Size2? = nil, overlap: Double = 1.0 / 3, device: Device = .cpu
  ) throws {
    guard !scales.isEmpty, scales.allSatisfy({ $0 > 0 && $0.isFinite }) else {
      throw TrainingError("evaluation scales must be positive numbers, got \(scales)")
    }
    if let crop, crop.height < 1 || crop.width < 1 {
      throw TrainingError("evaluation crop must be positive height and width, got \(crop.height)×\(crop.width)")
    }
    guard overlap >= 0, overlap < 1 else {
      throw TrainingError("window overlap must be in [0, 1), got \(overlap)")
    }
    self.scales = scales
    self.flip = flip
    self.crop = crop
    self.overlap = overlap
    self.device = device
  }

  /// The evaluation settings of a training configuration: `eval_scales`,
  /// `add_flipped_images`, and `eval_crop_size` as the sliding window. (DeepLab
  /// pads every image to `eval_crop_size`, which must cover the largest; here
  /// images that fit run whole, unpadded, and larger ones in windows.)
  public init(config: TrainingConfig, device: Device) throws {
    try self.init(
      scales: config.evalScales, flip: config.addFlippedImages,
      crop: config.evalCropSize.map { Size2($0[0], $0[1]) }, device: device)
  }

  /// Forward passes per image.
  public var passes: Int { scales.count * (flip ? 2 : 1) }

  // MARK: One image

  /// Class scores [1, C, H, W] on the CPU for an RGB image, at its size. With one
  /// pass (one scale, no flip) they are the model's logits (window-averaged with a
  /// crop, resized when the scale is not 1); with several, the mean softmax
  /// probabilities. Their argmax is the label.
  public func predictScores(_ model: any SegmentationNetwork, image: Image) throws -> Tensor {
    try predictScores(model, batch: ImageNormalization.batch(image))
  }

  /// The same for an already normalised [1, 3, H, W] batch; the scores come at its size.
  public func predictScores(_ model: any SegmentationNetwork, batch: Tensor) throws -> Tensor {
    try inEvaluationMode(model) { try scores(model, batch.to(device)).to(.cpu) }
  }

  /// The label map (class per pixel) of an RGB image.
  public func predictLabels(_ model: any SegmentationNetwork, image: Image) throws -> Image {
    try Predictor.labels(predictScores(model, image: image))
  }

  /// Scores on the model's device (see `predictScores`).
  func scores(_ model: any SegmentationNetwork, _ x: Tensor) throws -> Tensor {
    let shape = x.shape
    guard shape.count == 4, shape[0] == 1 else {
      throw TrainingError("evaluation takes one image at a time as a [1, C, H, W] batch, got shape \(shape)")
    }
    let size = Size2(shape[2], shape[3])
    var sum: Tensor?
    for scale in scales {
      let scaled = scale == 1 ? x : try x.interpolate(size: Self.scaled(size, by: scale), mode: .bilinear)
      for mirrored in flip ? [false, true] : [false] {
        var out = try logits(model, mirrored ? scaled.flip([3]) : scaled)
        if mirrored { out = try out.flip([3]) }
        if out.shape[2] != size.height || out.shape[3] != size.width {
          out = try out.interpolate(size: size, mode: .bilinear)
        }
        if passes == 1 { return out }
        let probabilities = try out.softmax(dim: 1)
        if let sum { try sum += probabilities } else { sum = probabilities }
      }
    }
    return try sum! / Double(passes)
  }

  /// round(H·s) × round(W·s), at least one pixel.
  static func scaled(_ size: Size2, by scale: Double) -> Size2 {
    Size2(max(1, Int((Double(size.height) * scale).rounded())), max(1, Int((Double(size.width) * scale).rounded())))
  }

  /// One pass's logits at the input's size: whole, or window by window.
  private func logits(_ model: any SegmentationNetwork, _ x: Tensor) throws -> Tensor {
    guard let crop else { return try model(x).out }
    let height = x.shape[2], width = x.shape[3]
    let rows = Self.windowStarts(length: height, window: crop.height, overlap: overlap)
    let columns = Self.windowStarts(length: width, window: crop.width, overlap: overlap)
    if rows.count == 1 && columns.count == 1 { return try model(x).out }
    let h = min(crop.height, height), w = min(crop.width, width)
    var sum: Tensor?
    let count = try Tensor.zeros([1, 1, height, width], device: x.device)
    for top in rows {
      for left in columns {
        let window = try x.narrow(dim: 2, start: top, length: h).narrow(dim: 3, start: left, length: w)
        let out = try model(window.contiguous()).out
        if sum == nil { sum = try Tensor.zeros([1, out.shape[1], height, width], device: x.device) }
        try sum!.narrow(dim: 2, start: top, length: h).narrow(dim: 3, start: left, length: w) += out
        try count.narrow(dim: 2, start: top, length: h).narrow(dim: 3, start: left, length: w) += 1
      }
    }
    return try sum! / count
  }

  /// Where windows start along a side: every round(window·(1 − overlap)) pixels,
  /// the last one moved back to end at the border; one window when the side fits.
  public static func windowStarts(length: Int, window: Int, overlap: Double) -> [Int] {
    guard length > window else { return [0] }
    let stride = max(1, Int((Double(window) * (1 - overlap)).rounded()))
    let count = (length - window + stride - 1) / stride + 1
    return (0..<count).map { min($0 * stride, length - window) }
  }

  /// Runs `body` with the model in evaluation mode and without autograd, then
  /// gives every module back its own mode (a trainer may keep some in evaluation
  /// mode). Modules come parent first, so a parent's `train` is undone where a
  /// child differs.
  private func inEvaluationMode<R>(_ model: any SegmentationNetwork, _ body: () throws -> R) throws -> R {
    let modes = model.modules().map { ($0, $0.isTraining) }
    model.eval()
    defer { for (module, training) in modes where module.isTraining != training { module.train(training) } }
    return try Torch.withInferenceMode(body)
  }

  // MARK: A dataset

  /// Scores the model's predictions on the labelled samples of `dataset` (the
  /// first `limit` when given) over `numClasses` classes, void (`ignoreIndex`)
  /// pixels ignored. `progress` hears after each image how many are done, of how
  /// many; `predictions`, when given, receives each sample's predicted label map.
  public func evaluate(
    model: any SegmentationNetwork, dataset: SampleSource, numClasses: Int, ignoreIndex: Int = Int(voidLabel),
    limit: Int? = nil, progress: ((_ done: Int, _ total: Int) -> Void)? = nil,
    predictions: ((_ index: Int, _ sample: Sample, _ labels: Image) throws -> Void)? = nil
  ) throws -> SegmentationScores {
    guard numClasses >= 1 else { throw TrainingError("evaluation needs at least one class, got \(numClasses)") }
    if let limit, limit < 1 { throw TrainingError("evaluation limit must be at least 1, got \(limit)") }
    let total = min(dataset.count, limit ?? dataset.count)
    guard total > 0 else { throw TrainingError("nothing to evaluate: the dataset holds no samples") }
    var matrix = ConfusionMatrix(numClasses: numClasses, ignoreIndex: ignoreIndex)
    try inEvaluationMode(model) {
      for index in 0..<total {
        let sample = try dataset.loadSample(at: index)
        let place = Self.describe(dataset, index, sample.name)
        guard let label = sample.label else {
          throw TrainingError("\(place): has no label; evaluation needs a labelled split")
        }
        let predicted = try scores(model, ImageNormalization.batch(sample.image).to(device)).argmax(dim: 1).squeeze(dim: 0)
        do {
          try matrix.update(predictions: predicted, labels: try label.labelTensor().to(predicted.device))
        } catch let error as MetricsError {
          throw TrainingError("\(place): \(error.message)")
        }
        if let predictions { try predictions(index, sample, try Image(tensor: predicted.to(.cpu).to(.uint8))) }
        progress?(index + 1, total)
      }
    }
    return matrix.scores
  }

  /// A sample's label file when the source knows it, else its name.
  private static func describe(_ source: SampleSource, _ index: Int, _ name: String) -> String {
    if let dataset = source as? SegmentationDataset, let url = dataset.files[index].label?.url { return url.path }
    return "sample \(name)"
  }
}
