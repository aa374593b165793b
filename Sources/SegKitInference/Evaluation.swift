import Foundation

/// Scores a model on a labelled dataset, one image at a time through an
/// `ImageSegmenter` (its scales, flips and windows). The one evaluation path of
/// each task: `segkit eval` and the trainer's validation both come here.
public enum Evaluation {
  /// The scores as JSON; with a precision comparison, the reduced precision's scores
  /// and under "precision" what they were measured against.
  public static func json(_ scores: SegmentationScores, classNames: [String]?, comparison: PrecisionComparison?) throws -> Data {
    let json = try scores.jsonData(classNames: classNames)
    guard let comparison else { return json }
    var object = try JSONSerialization.jsonObject(with: json) as? [String: Any] ?? [:]
    object["precision"] = comparison.dictionary
    return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
  }

  /// What to score a task's predictions against.
  public static func source(for task: ModelManifest.Task, _ dataset: any SampleSource) -> any SampleSource {
    task == .foreground ? ForegroundView(dataset) : dataset
  }

  /// Scores `segmenter`'s predictions on the labelled samples of `dataset` (the
  /// first `limit` when given) over `numClasses` label values (2 for a foreground
  /// model), void (`ignoreIndex`) pixels ignored. A foreground task scores its
  /// dataset seen as foreground against background. `progress` hears after each
  /// image how many are done, of how many; `predictions`, when given, receives each
  /// sample and its predicted label map.
  public static func run(
    _ segmenter: ImageSegmenter, task: ModelManifest.Task = .semantic, dataset: any SampleSource, numClasses: Int,
    ignoreIndex: Int = Int(voidLabel), limit: Int? = nil, progress: ((_ done: Int, _ total: Int) -> Void)? = nil,
    predictions: ((_ index: Int, _ sample: Sample, _ labels: Image) throws -> Void)? = nil
  ) throws -> SegmentationScores {
    try evaluate([segmenter], task: task, dataset: dataset, numClasses: numClasses, ignoreIndex: ignoreIndex, limit: limit,
                 progress: progress, predictions: predictions).scores[0]
  }

  /// A reduced-precision segmenter against the float32 one on the same images, image
  /// by image in turn (so both see the same machine): both scores, the largest
  /// difference between their scores (logits for one plain pass), and their model time.
  /// `predictions` receives the reduced one's labels.
  public static func compare(
    reference: ImageSegmenter, reduced: ImageSegmenter, task: ModelManifest.Task = .semantic,
    dataset: any SampleSource, numClasses: Int, ignoreIndex: Int = Int(voidLabel), limit: Int? = nil,
    progress: ((_ done: Int, _ total: Int) -> Void)? = nil,
    predictions: ((_ index: Int, _ sample: Sample, _ labels: Image) throws -> Void)? = nil
  ) throws -> PrecisionComparison {
    let result = try evaluate([reference, reduced], task: task, dataset: dataset, numClasses: numClasses,
                              ignoreIndex: ignoreIndex, limit: limit, progress: progress, predictions: predictions)
    return PrecisionComparison(
      precision: reduced.precision, measuredKernels: reduced.measuresKernels, reference: result.scores[0],
      reduced: result.scores[1], largestScoreDifference: result.largestDifference, referenceSeconds: result.seconds[0],
      reducedSeconds: result.seconds[1], images: result.images)
  }

  /// Each segmenter's scores over the first `limit` samples; the last one's labels go
  /// to `predictions`.
  private static func evaluate(
    _ segmenters: [ImageSegmenter], task: ModelManifest.Task, dataset: any SampleSource, numClasses: Int,
    ignoreIndex: Int, limit: Int?, progress: ((_ done: Int, _ total: Int) -> Void)?,
    predictions: ((_ index: Int, _ sample: Sample, _ labels: Image) throws -> Void)?
  ) throws -> (scores: [SegmentationScores], largestDifference: Double, seconds: [Double], images: Int) {
    guard numClasses >= 1 else { throw InferenceError("evaluation needs at least one class, got \(numClasses)") }
    if let limit, limit < 1 { throw InferenceError("evaluation limit must be at least 1, got \(limit)") }
    let source = self.source(for: task, dataset)
    let total = min(source.count, limit ?? source.count)
    guard total > 0 else { throw InferenceError("nothing to evaluate: the dataset holds no samples") }
    var matrices = segmenters.map { _ in ConfusionMatrix(numClasses: numClasses, ignoreIndex: ignoreIndex) }
    var seconds = segmenters.map { _ in 0.0 }
    var largestDifference = 0.0
    for index in 0..<total {
      let sample = try source.loadSample(at: index)
      let place = describe(dataset, index, sample.name)
      guard let label = sample.label else {
        throw InferenceError("\(place): has no label; evaluation needs a labelled split")
      }
      let labels = try label.labelTensor()
      var first: Tensor?
      var predicted: Tensor?
      for (which, segmenter) in segmenters.enumerated() {
        let start = DispatchTime.now().uptimeNanoseconds
        let scores = try segmenter.scores(sample.image)
        seconds[which] += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if let first { largestDifference = max(largestDifference, try (scores - first).abs().max().item()) }
        first = first ?? scores
        predicted = try segmenter.labelTensor(fromScores: scores).squeeze(dim: 0)
        do {
          try matrices[which].update(predictions: predicted!, labels: labels)
        } catch let error as MetricsError {
          throw InferenceError("\(place): \(error.message)")
        }
      }
      if let predictions, let predicted { try predictions(index, sample, try Image(tensor: predicted.to(.uint8))) }
      progress?(index + 1, total)
    }
    return (matrices.map(\.scores), largestDifference, seconds, total)
  }

  private static func describe(_ source: any SampleSource, _ index: Int, _ name: String) -> String {
    if let dataset = source as? SegmentationDataset, index < dataset.files.count,
       let url = dataset.files[index].label?.url { return url.path }
    return "sample \(name)"
  }
}

/// What a reduced precision (bf16, int8) changes against float32 on an evaluation:
/// the tool's own report of its accuracy and speed.
public struct PrecisionComparison {
  public let precision: InferencePrecision
  /// Whether the compared path ran measured kernels (`ImageSegmenter.measuresKernels`).
  public var measuredKernels = false
  /// The float32 path's scores and the reduced one's.
  public let reference: SegmentationScores
  public let reduced: SegmentationScores
  /// The largest absolute difference between the two paths' scores at any pixel
  /// (logits for one plain pass, else averaged probabilities).
  public let largestScoreDifference: Double
  /// Seconds in the model (inference passes, not data loading), all images.
  public let referenceSeconds: Double
  public let reducedSeconds: Double
  public let images: Int

  /// mIoU change in percentage points (negative: worse).
  public var meanIoUChange: Double { (reduced.meanIoU - reference.meanIoU) * 100 }
  public var speedUp: Double { reducedSeconds > 0 ? referenceSeconds / reducedSeconds : 0 }

  /// One line for people.
  public var summary: String {
    "\(precision.rawValue)\(measuredKernels ? " with measured kernels" : "") against fp32: " + String(format: "mIoU %.2f%% (fp32 %.2f%%, %+.2f points), largest score difference %.4g, "
           + "%.3f s per image (fp32 %.3f s, %.2fx)", reduced.meanIoU * 100, reference.meanIoU * 100,
           meanIoUChange, largestScoreDifference, reducedSeconds / Double(images), referenceSeconds / Double(images), speedUp)
  }

  /// The same, for JSON.
  public var dictionary: [String: Any] {
    ["precision": precision.rawValue, "measured_kernels": measuredKernels, "mIoU": reduced.meanIoU, "fp32_mIoU": reference.meanIoU,
     "mIoU_change_points": meanIoUChange, "largest_score_difference": largestScoreDifference,
     "seconds_per_image": reducedSeconds / Double(images), "fp32_seconds_per_image": referenceSeconds / Double(images),
     "speed_up": speedUp]
  }
}
