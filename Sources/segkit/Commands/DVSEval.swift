import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor

struct DVSEval: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Score dynamic key frames on video snippets: mIoU on the annotated frames, frames per second, paths taken.",
    discussion: """
      Each snippet runs from its first frame (or --frames-before the annotated one) to its \
      annotated frame, as a new video. --policy: fast, balanced or slow (targets 80, 90, 95), \
      target:T, interval:K (a key every K frames, Deep Feature Flow's schedule) or \
      every-frame (the segmentation network alone). --sweep runs every-frame, intervals and a \
      range of targets and writes OUT/sweep.csv and OUT/sweep.png (mIoU against frames per \
      second). Frames per second count the networks' work, not decoding.
      """)

  @OptionGroup var networks: DVSArguments
  @OptionGroup var snippets: SnippetArguments
  @OptionGroup var policy: PolicyArguments

  @Flag(help: "Run every-frame, intervals 2, 3, 5, 10 and targets 50 … 98; write OUT/sweep.csv and OUT/sweep.png.")
  var sweep = false

  @Option(help: "Frames before the annotated one where each snippet starts (default: its first frame).")
  var framesBefore: Int?

  @Option(help: "Output folder for --sweep.")
  var out: String?

  func validate() throws {
    if sweep && out == nil { throw ValidationError("--sweep writes a table and a plot: pass --out DIR") }
    if let framesBefore, framesBefore < 0 { throw ValidationError("--frames-before must not be negative") }
  }

  func run() throws {
    Torch.keepFreedMemory()
    let decisionNetwork = try policy.decisionNetwork()
    let policies = sweep
      ? DynamicKeyFrameEvaluation.sweepPolicies(withTargets: decisionNetwork != nil, dynamic: policy.dynamic)
      : [try policy.chosen(decision: decisionNetwork)]
    if sweep && decisionNetwork == nil { warn("no --decision: the sweep has no target policies") }
    let dataset = try snippets.dataset()
    let stop = Interrupt.install(message: "stopping after this snippet (Ctrl-C again quits at once)")
    print("\(dataset.snippets.count) snippets of \(dataset.split), regions \(networks.regions) (overlap \(networks.overlap) px)")
    print("policy                        mIoU    fps      seg steps  flow steps")
    var results: [DynamicKeyFrameEvaluation.Result] = []
    for policy in policies {
      let segmenter = try networks.segmenter(policy: policy, decision: decisionNetwork)
      do {
        results.append(try DynamicKeyFrameEvaluation.run(segmenter, on: dataset, framesBefore: framesBefore, shouldStop: { stop.requested }))
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
    print("plot: \(plotURL.path)")
  }
}
