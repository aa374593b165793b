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
      if shouldStop() { throw StoppedOnRequest() }
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

  /// The sweep's policies: every frame, fixed intervals 2, 3, 5 and 10 (Deep Feature
  /// Flow's schedule) and, with a decision network, targets 50 … 98.
  public static func sweepPolicies(withTargets: Bool, dynamic: Bool) -> [DynamicKeyFrameSegmenter.Policy] {
    [.everyFrame] + [2, 3, 5, 10].map { .fixedInterval($0) }
      + (withTargets ? [50.0, 60, 70, 80, 85, 90, 92, 94, 96, 98].map { .target($0, dynamic: dynamic) } : [])
  }

  /// The sweep's table: a row per policy.
  public static func csv(_ results: [Result]) -> String {
    "policy,mIoU,fps,segmentation_steps,flow_steps,segmentation_share\n" + results.map {
      String(format: "%@,%.4f,%.3f,%d,%d,%.4f", $0.policy, $0.scores.meanIoU, $0.framesPerSecond, $0.counts.segmentationSteps,
             $0.counts.flowSteps, $0.segmentationShare)
    }.joined(separator: "\n") + "\n"
  }

  /// mIoU (percent) against frames per second: per-frame segmentation as one point, the
  /// fixed intervals and the targets as curves.
  public static func plot(_ results: [Result], policies: [DynamicKeyFrameSegmenter.Policy]) -> Plot {
    var plot = Plot(title: "mIoU against speed", xLabel: "frames per second", yLabel: "mIoU (%)")
    func points(_ keep: (DynamicKeyFrameSegmenter.Policy) -> Bool) -> [(x: Double, y: Double)] {
      zip(policies, results).filter { keep($0.0) }.map { (x: $0.1.framesPerSecond, y: 100 * $0.1.scores.meanIoU) }
    }
    plot.series = [
      Plot.Series(name: "every frame", color: [40, 40, 40], points: points { $0 == .everyFrame }, joined: false),
      Plot.Series(name: "fixed interval", color: [230, 120, 20], points: points { if case .fixedInterval = $0 { return true } else { return false } }),
      Plot.Series(name: "DVS targets", color: [30, 100, 220], points: points { if case .target = $0 { return true } else { return false } }),
    ].filter { !$0.points.isEmpty }
    return plot
  }

  /// A result as a line of the printed table.
  public static func row(_ result: Result) -> String {
    result.policy.padding(toLength: 28, withPad: " ", startingAt: 0)
      + String(format: "  %.4f  %7.2f  %9d  %10d", result.scores.meanIoU, result.framesPerSecond, result.counts.segmentationSteps, result.counts.flowSteps)
  }
}
