import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor

/// `segkit dvs …`: video semantic segmentation with dynamic key frames (DVSNet).
struct DVSCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "dvs",
    abstract: "Video semantic segmentation with dynamic key frames (DVSNet): decision samples, decision training, evaluation.",
    discussion: """
      The pieces: a segmentation run (`segkit train`, any semantic model), a flow network \
      (a `task: flow` run of flownets_thin, or FlowNet2-S weights) and a decision network \
      trained here on samples from both. Each frame is split into regions (--regions, \
      --overlap); a region with a key frame runs the flow network from itself to its key, \
      and the decision network predicts from the flow network's features how many of the \
      region's pixels the warped key labels would get right (the confidence score, percent). \
      Below the target the region is segmented and becomes its own key; otherwise the key's \
      logits are warped by the flow.
      """,
    subcommands: [DVSFeatures.self, DVSTrainDecision.self, DVSEval.self, DVSVideo.self]
  )
}

struct DVSFeatures: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "features",
    abstract: "Write decision samples: flow features and warp-path confidence scores of frame pairs (DVSNet's X and Y).",
    discussion: """
      For every snippet, frames from the last back to --max-distance in steps of --stride \
      are current frames, each paired with the keys 0 … --max-distance frames before it. \
      Per pair and region: the flow network's conv6_1 features (current → key) and the \
      percentage of pixels where the warped key segmentation equals the segmentation of the \
      current frame (DVSNet's target; void ignored). Written as one safetensors file \
      (features, scores, distances) for `segkit dvs train-decision`.
      """)

  @OptionGroup var networks: DVSArguments
  @OptionGroup var snippets: SnippetArguments

  @Option(help: "The largest key-to-current distance in frames (DVSNet's lists: 9).")
  var maxDistance = 9

  @Option(help: "Frames between successive current frames of a snippet (default: the largest that gives at least 10,000 samples, DVSNet's scale being 38,675 pairs × 4 regions).")
  var stride: Int?

  @Option(help: "The samples file to write (.safetensors).")
  var out: String

  func validate() throws {
    guard (0...100).contains(maxDistance) else { throw ValidationError("--max-distance must be 0 to 100") }
    if let stride, stride < 1 { throw ValidationError("--stride must be at least 1") }
  }

  func run() throws {
    Torch.keepFreedMemory()
    let outURL = try writableFile(out, option: "--out")
    let (segmenter, _, identity) = try networks.segmenterAndManifest(policy: .everyFrame, decision: nil)
    let dataset = try snippets.dataset()
    let stride = try self.stride ?? DecisionSamples.stride(toReach: 10_000, in: dataset, maxDistance: maxDistance, grid: segmenter.grid)
    let stop = Interrupt.install(message: "stopping after this snippet (Ctrl-C again quits at once)")
    let start = Date()
    var samples: DecisionSamples
    do {
      samples = try DecisionSamples.collect(
        from: dataset, segmenter: segmenter, maxDistance: maxDistance, stride: stride,
        progress: { warn("\($0)/\(dataset.snippets.count) snippets, \($1) samples", prefix: "") }, shouldStop: { stop.requested })
    } catch is StoppedOnRequest {
      throw ExitCode(130)
    } catch let error as InferenceError {
      throw CommandError(error.message)
    }
    samples.segmentation = identity
    try samples.write(to: outURL)
    print("\(samples.count) samples (stride \(stride), \(samples.featureLayer?.rawValue ?? "?") features) from \(dataset.snippets.count) snippets of \(dataset.split) (\(String(format: "%.1f s", Date().timeIntervalSince(start)))): \(outURL.path)")
    print("mean confidence score by key distance: "
      + (try samples.meanScoreByDistance()).map { String(format: "%d: %.1f", $0.distance, $0.mean) }.joined(separator: ", "))
  }
}
