import ArgumentParser
import Foundation
import SegKitData
import SegKitInference

struct FlowCacheCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "cache",
    abstract: "Compute and keep the flows of a DAVIS split: for every frame t, t → t−1 and t → t+1.",
    discussion: """
      Writes <cache>/<sequence>/<frame>.backward.flo (t → t−1, what carries frame t−1's mask \
      to t) and <frame>.forward.flo (t → t+1), and <cache>/settings.json. Flows already there \
      are kept; a cache made with other settings (method, preset, weights) is refused. Default \
      cache: ROOT/FlowCache. A MaskRNN run with flow_method flownet2s or flownets_thin and \
      flow_weights reads the cache this fills with --method and --weights.
      """)

  @OptionGroup var davis: DAVISArguments

  @Option(help: "The cache folder (default: FlowCache inside the DAVIS root).")
  var cache: String?

  @OptionGroup var flowMethod: FlowMethodArguments

  @Option(help: "Frames computed at once (DIS).")
  var workers = 2

  func validate() throws {
    guard davis.davis != nil else { throw ValidationError("--davis ROOT and --year 2016|2017 are required") }
    guard (1...64).contains(workers) else { throw ValidationError("--workers must be 1 to 64") }
  }

  func run() throws {
    let dataset = try davis.dataset()
    let folder = cache.map { URL(fileURLWithPath: $0) } ?? FlowCache.defaultFolder(forDatasetAt: URL(fileURLWithPath: davis.davis ?? "."))
    let flows = try FlowCache(folder: folder, method: try flowMethod.flowMethod())
    let start = Date()
    let computed = try flows.fill(dataset.sequences, workers: workers)
    let frames = dataset.sequences.reduce(0) { $0 + $1.frames.count }
    print("\(dataset.sequences.count) sequences, \(frames) frames: \(computed) computed, \(frames - computed) already cached, "
      + String(format: "%.1f s", Date().timeIntervalSince(start)))
    print("cache: \(folder.path)")
  }
}
