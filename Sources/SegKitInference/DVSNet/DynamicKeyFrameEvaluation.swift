import Foundation

/// Scores a `DynamicKeyFrameSegmenter` on video snippets. Each run starts a new video
/// and every labelled frame it passes enters the confusion matrix, so a policy is
/// scored at every key distance it produces, not at one phase of its schedule:
///
/// - snippets labelled on many frames (`segkit data synth --kind street`) run from
///   their first frame to their last labelled one, scoring each labelled frame;
/// - snippets with one annotated frame (Cityscapes, CamVid) run once per start offset
///   (`framesBefore`, default 10…19 frames before it), and the annotated frame is
///   scored after each, so fixed intervals are averaged over their phases.
///
/// mIoU comes with a 95 % bootstrap interval over snippets. Frames per second count
/// the segmenter's own work on every frame run (decoding excluded: a snippet's frames
/// are read before its clock starts; two untimed frames warm the networks up).
public enum DynamicKeyFrameEvaluation {
  /// The start offsets a snippet with one annotated frame runs from.
  public static let defaultFramesBefore = Array(10...19)

  public struct Result: Sendable {
    public let policy: String
    public let scores: SegmentationScores
    /// The 2.5th and 97.5th percentiles of mIoU over snippets resampled with replacement.
    public let meanIoUInterval: (low: Double, high: Double)
    public let framesPerSecond: Double
    public let counts: DynamicKeyFrameSegmenter.Counts
    public let snippets: Int
    public let scoredFrames: Int

    /// Segmentation steps per frame, in whole frames: the share of region steps that
    /// took the segmentation path (1 for every frame). Unlike fps it does not depend on
    /// the machine.
    public var segmentationShare: Double {
      let total = counts.segmentationSteps + counts.flowSteps
      return total == 0 ? 0 : Double(counts.segmentationSteps) / Double(total)
    }
  }

  /// - Parameters:
  ///   - framesBefore: the offsets before a snippet's last labelled frame where runs start
  ///     (nil: the first frame where many frames are labelled, else `defaultFramesBefore`).
  ///   - progress: (snippets done, snippets).
  public static func run(
    _ segmenter: DynamicKeyFrameSegmenter, on dataset: VideoSnippets, framesBefore: [Int]? = nil, ignoreIndex: Int = 255,
    progress: (Int, Int) -> Void = { _, _ in }, shouldStop: () -> Bool = { false }
  ) throws -> Result {
    if let framesBefore, framesBefore.isEmpty || framesBefore.contains(where: { $0 < 0 }) {
      throw InferenceError("frames before the annotated one: \(framesBefore) needs one or more offsets of 0 or more")
    }
    let classes = segmenter.segmenter.model.classes
    var matrices: [ConfusionMatrix] = []
    var seconds = 0.0, scored = 0
    // Two untimed frames first: the first pass of each network at a new size pays for
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
      let labelled = snippet.labelled, last = labelled.last ?? snippet.annotated
      let offsets = framesBefore ?? (labelled.count > 1 ? [last] : defaultFramesBefore)
      let starts = offsets.map { max(0, last - $0) }
      let first = starts.min() ?? 0
      var frames: [Int: Image] = [:]
      for t in first...last { frames[t] = try ImageIO.read(snippet.frames[t]) }
      var truths: [Int: Tensor] = [:]
      for t in labelled where t >= first && t <= last {
        let truth = try dataset.label(at: t, of: snippet)
        guard truth.width == frames[t]!.width, truth.height == frames[t]!.height else {
          throw InferenceError("\(snippet.labelFiles[t]!.path): a \(truth.width)×\(truth.height) label for \(frames[t]!.width)×\(frames[t]!.height) frames")
        }
        truths[t] = try Tensor(truth.pixels.map(Int64.init), shape: [truth.height, truth.width])
      }
      var matrix = ConfusionMatrix(numClasses: classes, ignoreIndex: ignoreIndex)
      for runStart in starts {
        segmenter.reset()
        var predictions: [(Int, Tensor)] = []
        let clock = Date()
        for t in runStart...last {
          let step = try segmenter.step(frames[t]!)
          if truths[t] != nil { predictions.append((t, step.labels)) }
        }
        seconds += Date().timeIntervalSince(clock)
        for (t, labels) in predictions { try matrix.update(predictions: labels, labels: truths[t]!) }
        scored += predictions.count
      }
      matrices.append(matrix)
    }
    progress(dataset.snippets.count, dataset.snippets.count)
    let end = segmenter.counts
    let counts = DynamicKeyFrameSegmenter.Counts(
      frames: end.frames - start.frames, segmentationSteps: end.segmentationSteps - start.segmentationSteps,
      flowSteps: end.flowSteps - start.flowSteps)
    var total = ConfusionMatrix(numClasses: classes, ignoreIndex: ignoreIndex)
    for matrix in matrices { try total.merge(matrix) }
    return Result(policy: segmenter.policy.description, scores: total.scores, meanIoUInterval: try bootstrap(matrices),
                  framesPerSecond: Double(counts.frames) / max(seconds, 1e-9), counts: counts,
                  snippets: dataset.snippets.count, scoredFrames: scored)
  }

  /// The 95 % percentile interval of mIoU over `resamples` draws of the snippets with
  /// replacement (a fixed seed, so a table can be rebuilt exactly).
  public static func bootstrap(_ matrices: [ConfusionMatrix], resamples: Int = 1000) throws -> (low: Double, high: Double) {
    guard let firstMatrix = matrices.first else { return (0, 0) }
    var state: UInt64 = 0x5EED_D75E
    func next() -> Int {
      // SplitMix64: small, seedable and good enough to pick indices.
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return Int((z ^ (z >> 31)) % UInt64(matrices.count))
    }
    var values: [Double] = []
    for _ in 0..<resamples {
      var sum = ConfusionMatrix(numClasses: firstMatrix.numClasses, ignoreIndex: firstMatrix.ignoreIndex)
      for _ in matrices.indices { try sum.merge(matrices[next()]) }
      values.append(sum.scores.meanIoU)
    }
    values.sort()
    func percentile(_ p: Double) -> Double { values[min(values.count - 1, Int(p * Double(values.count - 1)))] }
    return (percentile(0.025), percentile(0.975))
  }

  /// The sweep's policies at comparable costs: every frame, a key every 2 … 10 frames
  /// (Deep Feature Flow's schedule) and the given targets (percentiles of the decision
  /// samples' scores, so every target lies where predictions fall).
  public static func sweepPolicies(targets: [Double], dynamic: Bool) -> [DynamicKeyFrameSegmenter.Policy] {
    [.everyFrame] + (2...10).map { .fixedInterval($0) } + targets.map { .target($0, dynamic: dynamic) }
  }

  /// The percentiles the sweep's targets are read at.
  public static let targetPercentiles: [Double] = [2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90]

  /// The sweep's table: a row per policy.
  public static func csv(_ results: [Result]) -> String {
    "policy,mIoU,mIoU_low,mIoU_high,fps,segmentation_per_frame,segmentation_steps,flow_steps,scored_frames\n" + results.map {
      String(format: "%@,%.4f,%.4f,%.4f,%.3f,%.4f,%d,%d,%d", $0.policy, $0.scores.meanIoU, $0.meanIoUInterval.low,
             $0.meanIoUInterval.high, $0.framesPerSecond, $0.segmentationShare, $0.counts.segmentationSteps, $0.counts.flowSteps,
             $0.scoredFrames)
    }.joined(separator: "\n") + "\n"
  }

  /// mIoU (percent) against a cost: per-frame segmentation as one point, the fixed
  /// intervals and the targets as curves. `x` is frames per second or segmentation
  /// steps per frame.
  public enum Axis { case framesPerSecond, segmentationPerFrame }

  public static func plot(_ results: [Result], policies: [DynamicKeyFrameSegmenter.Policy], x axis: Axis = .framesPerSecond) -> Plot {
    var plot = axis == .framesPerSecond
      ? Plot(title: "mIoU against speed", xLabel: "frames per second", yLabel: "mIoU (%)")
      : Plot(title: "mIoU against cost", xLabel: "segmentation steps per frame", yLabel: "mIoU (%)")
    func points(_ keep: (DynamicKeyFrameSegmenter.Policy) -> Bool) -> [(x: Double, y: Double)] {
      zip(policies, results).filter { keep($0.0) }.map {
        (x: axis == .framesPerSecond ? $0.1.framesPerSecond : $0.1.segmentationShare, y: 100 * $0.1.scores.meanIoU)
      }.sorted { $0.x < $1.x }
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
      + String(format: "  %.4f [%.4f, %.4f]  %7.2f  %5.3f  %9d  %10d", result.scores.meanIoU, result.meanIoUInterval.low,
               result.meanIoUInterval.high, result.framesPerSecond, result.segmentationShare, result.counts.segmentationSteps,
               result.counts.flowSteps)
  }

  /// The printed table's header, aligned with `row`.
  public static let header = "policy                        mIoU   [95 % interval]    fps      seg/frame  seg steps  flow steps"
}
