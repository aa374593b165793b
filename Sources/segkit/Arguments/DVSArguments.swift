import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor

/// The networks of the two paths and the regions.
struct DVSArguments: ParsableArguments {
  @OptionGroup var model: ModelArguments

  @Option(help: "The flow network: a `task: flow` run folder, or a weight file with --flow-model.")
  var flow: String

  @Option(help: "The flow network of a weight file: flownets_thin (DVSNet's) or flownet2s.")
  var flowModel = "flownets_thin"

  @Option(help: "Regions per frame, ROWSxCOLUMNS (DVSNet's paper: 2x2; its code: 1x1).")
  var regions = "1x1"

  @Option(help: "Pixels by which each region reaches across its inner edges (DVSNet: 64).")
  var overlap = 0

  @Option(help: "Where key logits are warped: flow (at the flow's resolution, DVSNet) or output (the flow upsampled to the region); default: the flow run's warp_at, else flow.")
  var warpAt: String?

  @Option(help: "Factor regions are resized by for the flow network (DVSNet: 0.5); default: the flow run's flow_input_scale, else 1.")
  var flowScale: Double?

  @Option(help: "Arithmetic of the segmentation path: fp32 (exact, the default) or bf16.")
  var precision = "fp32"

  @OptionGroup var device: DeviceArgument

  func grid() throws -> RegionGrid {
    let parts = regions.lowercased().split(separator: "x").map { Int($0) }
    guard parts.count == 2, let rows = parts[0], let columns = parts[1] else {
      throw ValidationError("--regions '\(regions)' is not ROWSxCOLUMNS (e.g. 2x2)")
    }
    do { return try RegionGrid(rows: rows, columns: columns, overlap: overlap) } catch let error as InferenceError {
      throw ValidationError("--regions/--overlap: \(error.message)")
    }
  }

  /// The segmenter of `policy` with the segmentation model on its device.
  func segmenter(policy: DynamicKeyFrameSegmenter.Policy, decision: DecisionNetwork?) throws -> DynamicKeyFrameSegmenter {
    try segmenterAndManifest(policy: policy, decision: decision).segmenter
  }

  func segmenterAndManifest(policy: DynamicKeyFrameSegmenter.Policy, decision: DecisionNetwork?) throws
    -> (segmenter: DynamicKeyFrameSegmenter, manifest: ModelManifest)
  {
    let chosen = try device.resolved()
    let run = try model.run(for: "segkit dvs", tasks: [.semantic])
    let loaded = try model.load(run: run?.layout, fallbackClasses: nil, requireWeights: true)
    guard loaded.manifest.task == .semantic else {
      throw ValidationError("the segmentation path needs a semantic model; \(loaded.manifest.model) is a \(loaded.manifest.task.rawValue) model")
    }
    guard let chosenPrecision = InferencePrecision(rawValue: precision), chosenPrecision != .int8 else {
      throw ValidationError("--precision must be fp32 or bf16 for dvs (int8 would need a calibration set), got '\(precision)'")
    }
    let image = try ImageSegmenter(model: loaded.network, device: chosen, normalization: loaded.manifest.normalization,
                                   precision: chosenPrecision)
    let flowNetwork = try self.flowNetwork(device: chosen)
    try decision?.to(device: chosen)
    // A warp-path run says how its flow network was trained to be used.
    let flowRun = try? inferenceDefaults(of: RunLayout.existing(URL(fileURLWithPath: flow)))
    let warp = warpAt ?? flowRun?.warpAt ?? "flow"
    guard let resolution = WarpPath.Resolution(rawValue: warp) else { throw ValidationError("--warp-at '\(warp)': expected flow or output") }
    let scale = flowScale ?? flowRun?.flowInputScale ?? 1
    guard scale > 0, scale <= 16 else { throw ValidationError("--flow-scale must be more than 0 and at most 16, got \(scale)") }
    return (try DynamicKeyFrameSegmenter(segmenter: image, flowNetwork: flowNetwork, decision: decision, grid: try grid(), policy: policy,
                                         warpResolution: resolution, flowScale: scale),
            loaded.manifest)
  }

  func flowNetwork(device: Device) throws -> FlowNetS {
    let url = URL(fileURLWithPath: flow)
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
      throw ValidationError("--flow \(flow): no such file or folder")
    }
    if isDirectory.boolValue { return try NetworkFlow(run: try RunLayout.existing(url), device: device).network }
    guard let widths = ModelFamily(name: flowModel)?.flowWidths else {
      throw ValidationError("--flow-model \(flowModel): expected \(ModelZoo.flowNetworkNames.joined(separator: " or "))")
    }
    return try NetworkFlow(widths: widths, weights: url, device: device).network
  }
}

/// Where the video snippets come from.
struct SnippetArguments: ParsableArguments {
  @Option(help: "Cityscapes root with leftImg8bit_sequence/ and gtFine/ (or `segkit data synth --kind street`'s folder).")
  var cityscapes: String?

  @Option(help: "CamVid at 30 fps: a root with <split>/<sequence>/ frames and <split>annot/<sequence>/ labels (DVSNet's layout).")
  var camvid: String?

  @Option(help: "The split: train, val or test.")
  var split = "val"

  func validate() throws {
    guard (cityscapes == nil) != (camvid == nil) else { throw ValidationError("pass one of --cityscapes and --camvid") }
  }

  func dataset() throws -> VideoSnippets {
    if let camvid { return try VideoSnippets.camvid(root: URL(fileURLWithPath: camvid), split: split) }
    return try VideoSnippets.cityscapes(root: URL(fileURLWithPath: cityscapes ?? ""), split: split)
  }
}

/// How each region chooses its path.
struct PolicyArguments: ParsableArguments {
  @Option(help: "The decision network (OUT/decision.safetensors of `segkit dvs train-decision`); needed by target policies.")
  var decision: String?

  @Option(help: "fast, balanced or slow (targets 80, 90, 95), target:T, interval:K or every-frame.")
  var policy = "balanced"

  @Flag(help: "DVSNet's dynamic target: 1 lower after each segmentation step, 0.1 higher after each flow step.")
  var dynamic = false

  func decisionNetwork() throws -> DecisionNetwork? {
    try decision.map { try DecisionNetworkFile.read(URL(fileURLWithPath: $0)) }
  }

  /// --policy, checked against the decision network it needs.
  func chosen(decision network: DecisionNetwork?) throws -> DynamicKeyFrameSegmenter.Policy {
    let chosen = try Self.parse(policy, dynamic: dynamic)
    if case .target = chosen, network == nil {
      throw ValidationError("--policy \(policy) decides by the decision network: pass --decision FILE")
    }
    return chosen
  }

  static func parse(_ text: String, dynamic: Bool) throws -> DynamicKeyFrameSegmenter.Policy {
    if let preset = DynamicKeyFrameSegmenter.Policy.preset(text) {
      guard case .target(let t, _) = preset else { return preset }
      return .target(t, dynamic: dynamic)
    }
    if text == "every-frame" { return .everyFrame }
    if text.hasPrefix("target:"), let t = Double(text.dropFirst("target:".count)), (0...100).contains(t) {
      return .target(t, dynamic: dynamic)
    }
    if text.hasPrefix("interval:"), let k = Int(text.dropFirst("interval:".count)), k >= 1 { return .fixedInterval(k) }
    throw ValidationError("--policy '\(text)': expected fast, balanced, slow, target:T (0 to 100), interval:K (K ≥ 1) or every-frame")
  }
}
