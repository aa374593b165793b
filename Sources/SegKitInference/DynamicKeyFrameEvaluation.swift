import Foundation

/// Scores a `DynamicKeyFrameSegmenter` on video snippets as DVSNet is scored: each
/// snippet runs from its first frame to its annotated frame (a new video each time),
/// and the annotated frame's labels enter the confusion matrix. Frames per second
/// count the segmenter's own work on every frame run (decoding excluded: the frames of
/// a snippet are read before its clock starts; two untimed frames warm the networks up).
public enum DynamicKeyFrameEvaluation {
  public struct Result: Sendable {
    public let policy: String
    public let scores: SegmentationScores
    public let framesPerSecond: Double
    public let counts: DynamicKeyFrameSegmenter.Counts
    public let snippets: Int

    /// The share of region steps that took the segmentation path.
    public var segmentationShare: Double {
      let total = counts.segmentationSteps + counts.flowSteps
      return total == 0 ? 0 : Double(counts.segmentationSteps) / Double(total)
    }
  }

  /// - Parameters:
  ///   - framesBefore: how many frames before the annotated one each snippet starts at
  ///     (nil: the snippet's first frame).
  ///   - progress: (snippets done, snippets).
  public static func run(
    _ segmenter: DynamicKeyFrameSegmenter, on dataset: VideoSnippets, framesBefore: Int? = nil, ignoreIndex: Int = 255,
    progress: (Int, Int) -> Void = { _, _ in }, shouldStop: () -> Bool = { false }
  ) throws -> Result {
    let classes = segmenter.segmenter.model.classes
    var matrix = ConfusionMatrix(numClasses: classes, ignoreIndex: ignoreIndex)
    var seconds = 0.0
    // One untimed frame first: the first pass of each network at a new size pays for
    // allocations and kernel choices that every later frame reuses.
    if let snippet = dataset.snippets.first, let frame = snippet.frames.first {
      segmenter.reset()
      _ = try segmenter.step(try ImageIO.read(frame))
      _ = try segmenter.step(try ImageIO.read(snippet.frames[min(1, snippet.frames.count - 1)]))
    }
    segmenter.reset()
    let start = segmenter.counts
    for (index, snippet) in dataset.snippets.enumerated() {
      progress(index, dataset.snippets.count)
      if shouldStop() { throw InferenceError.stopped }
      let first = framesBefore.map { max(0, snippet.annotated - $0) } ?? 0
      let frames = try snippet.frames[first...snippet.annotated].map { try ImageIO.read($0) }
      let truth = try dataset.label(of: snippet)
      guard truth.width == frames[0].width, truth.height == frames[0].height else {
        throw InferenceError("\(snippet.label.path): a \(truth.width)×\(truth.height) label for \(frames[0].width)×\(frames[0].height) frames")
      }
      segmenter.reset()
      let clock = Date()
      var last: DynamicKeyFrameSegmenter.Step?
      for frame in frames { last = try segmenter.step(frame) }
      seconds += Date().timeIntervalSince(clock)
      try matrix.update(predictions: last!.labels, labels: try Tensor(truth.pixels.map(Int64.init), shape: [truth.height, truth.width]))
    }
    progress(dataset.snippets.count, dataset.snippets.count)
    let end = segmenter.counts
    let counts = DynamicKeyFrameSegmenter.Counts(
      frames: end.frames - start.frames, segmentationSteps: end.segmentationSteps - start.segmentationSteps,
      flowSteps: end.flowSteps - start.flowSteps)
    return Result(policy: segmenter.policy.description, scores: matrix.scores,
                  framesPerSecond: Double(counts.frames) / max(seconds, 1e-9), counts: counts, snippets: dataset.snippets.count)
  }
}
