import Foundation

/// Scores a model on a labelled dataset, one image at a time through an
/// `ImageSegmenter` (its scales, flips and windows). The one evaluation path of
/// each task: `segkit eval` and the trainer's validation both come here.
public enum Evaluation {
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
    guard numClasses >= 1 else { throw InferenceError("evaluation needs at least one class, got \(numClasses)") }
    if let limit, limit < 1 { throw InferenceError("evaluation limit must be at least 1, got \(limit)") }
    let source = self.source(for: task, dataset)
    let total = min(source.count, limit ?? source.count)
    guard total > 0 else { throw InferenceError("nothing to evaluate: the dataset holds no samples") }
    var matrix = ConfusionMatrix(numClasses: numClasses, ignoreIndex: ignoreIndex)
    for index in 0..<total {
      let sample = try source.loadSample(at: index)
      let place = describe(dataset, index, sample.name)
      guard let label = sample.label else {
        throw InferenceError("\(place): has no label; evaluation needs a labelled split")
      }
      let scores = try segmenter.scores(sample.image)
      let predicted = try segmenter.labelTensor(fromScores: scores).squeeze(dim: 0)
      do {
        try matrix.update(predictions: predicted, labels: try label.labelTensor())
      } catch let error as MetricsError {
        throw InferenceError("\(place): \(error.message)")
      }
      if let predictions { try predictions(index, sample, try Image(tensor: predicted.to(.uint8))) }
      progress?(index + 1, total)
    }
    return matrix.scores
  }

  /// A sample's label file when the source knows it, else its name.
  private static func describe(_ source: any SampleSource, _ index: Int, _ name: String) -> String {
    if let dataset = source as? SegmentationDataset, index < dataset.files.count,
       let url = dataset.files[index].label?.url { return url.path }
    return "sample \(name)"
  }
}
