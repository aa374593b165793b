import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor

struct DVSEval: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Score dynamic key frames on video snippets: mIoU on every labelled frame, frames per second, paths taken.",
    discussion: """
      Each run is a new video. Snippets labelled on many frames (`segkit data synth --kind \
      street`) run from their first frame and every labelled frame is scored; snippets with \
      one annotated frame (Cityscapes, CamVid) run once from each of --frames-before frames \
      before it (default 10-19) and the annotated frame is scored after each, so a fixed \
      interval is averaged over its phases. mIoU comes with a 95 % bootstrap interval over \
      snippets; seg/frame is segmentation steps per frame (machine-independent cost). \
      --policy: fast, balanced or slow (targets 80, 90, 95), target:T, interval:K (a key \
      every K frames, Deep Feature Flow's schedule) or every-frame. --sweep runs every \
      frame, intervals 2 to 10 and, with --decision, targets at percentiles of its training \
      scores, and writes OUT/sweep.csv, OUT/sweep.png (mIoU against frames per second) and \
      OUT/sweep-cost.png (mIoU against segmentation steps per frame). Frames per second \
      count the networks' work, not decoding.
      """)

  @OptionGroup var networks: DVSArguments
  @OptionGroup var snippets: SnippetArguments
  @OptionGroup var policy: PolicyArguments

  @Flag(help: "Run every-frame, intervals 2 to 10 and targets at percentiles of the decision network's training scores; write OUT/sweep.csv, OUT/sweep.png and OUT/sweep-cost.png.")
  var sweep = false

  @Option(help: "Frames before the last labelled one where runs start: N, N-M or a list N,M,… (default: the first frame where many frames are labelled, else 10-19).")
  var framesBefore: String?

  @Option(help: "Output folder for --sweep.")
  var out: String?

  func validate() throws {
    if sweep && out == nil { throw ValidationError("--sweep writes a table and a plot: pass --out DIR") }
    _ = try offsets()
  }

  /// --frames-before as a list of offsets.
  func offsets() throws -> [Int]? {
    guard let framesBefore else { return nil }
    var values: [Int] = []
    for part in framesBefore.split(separator: ",") {
      let bounds = part.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
      guard (1...2).contains(bounds.count), let low = bounds.first!, let high = bounds.last!, low >= 0, low <= high, high <= 10_000 else {
        throw ValidationError("--frames-before '\(framesBefore)': expected N, N-M or a list N,M,… of offsets of 0 or more")
      }
      values += Array(low...high)
    }
    return values
  }

  func run() throws {
    Torch.keepFreedMemory()
    let decisionNetwork = try policy.decisionNetwork()
    let targets = try decisionNetwork.map { try sweepTargets($0) } ?? []
    let policies = sweep
      ? DynamicKeyFrameEvaluation.sweepPolicies(targets: targets, dynamic: policy.dynamic)
      : [try policy.chosen(decision: decisionNetwork)]
    if sweep && decisionNetwork == nil { warn("no --decision: the sweep has no target policies") }
    let dataset = try snippets.dataset()
    let stop = Interrupt.install(message: "stopping after this snippet (Ctrl-C again quits at once)")
    print("\(dataset.snippets.count) snippets of \(dataset.split), regions \(networks.regions) (overlap \(networks.overlap))")
    print(DynamicKeyFrameEvaluation.header)
    var results: [DynamicKeyFrameEvaluation.Result] = []
    for policy in policies {
      let segmenter = try networks.segmenter(policy: policy, decision: decisionNetwork)
      do {
        results.append(try DynamicKeyFrameEvaluation.run(segmenter, on: dataset, framesBefore: try offsets(), shouldStop: { stop.requested }))
      } catch is StoppedOnRequest {
        print("stopped during \(policy)")
        throw ExitCode(130)
      }
      print(DynamicKeyFrameEvaluation.row(results.last!))
      fflush(stdout)
    }
    guard sweep, let out else { return }
    let folder = URL(fileURLWithPath: out)
    try createFolder(folder)
    let csvURL = folder.appendingPathComponent("sweep.csv")
    try write(Data(DynamicKeyFrameEvaluation.csv(results).utf8), to: csvURL)
    print("table: \(csvURL.path)")
    let plotURL = folder.appendingPathComponent("sweep.png")
    try ImageIO.writePNG(DynamicKeyFrameEvaluation.plot(results, policies: policies).render(), to: plotURL)
    let costURL = folder.appendingPathComponent("sweep-cost.png")
    try ImageIO.writePNG(DynamicKeyFrameEvaluation.plot(results, policies: policies, x: .segmentationPerFrame).render(), to: costURL)
    print("plots: \(plotURL.path), \(costURL.path)")
  }

  /// The sweep's targets: percentiles of the decision network's training scores, or
  /// DVSNet's fixed list for a network whose file has none.
  private func sweepTargets(_ decision: LoadedDecision) throws -> [Double] {
    let percentiles = decision.info.scorePercentiles
    guard !percentiles.isEmpty else {
      warn("\(decision.file) records no score percentiles (older file): the sweep uses targets 50 … 98")
      return [50, 60, 70, 80, 85, 90, 92, 94, 96, 98]
    }
    return Array(Set(percentiles.map { ($0.score * 10).rounded() / 10 })).sorted()
  }
}
