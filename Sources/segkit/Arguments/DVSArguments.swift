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

  @Option(help: "How far each region reaches across its inner edges: pixels, or a share of the frame's height such as 6.25% (DVSNet's 64 px on 1024 rows, the default).")
  var overlap = "6.25%"

  @Option(help: "Where key logits are warped: output (the flow upsampled to the region: DVSNet's finer-grid order) or flow (the logits resized down to the flow's grid); default: the flow run's warp_at, else output.")
  var warpAt: String?

  @Option(help: "The flow layer the decision network reads: conv6_1 (DVSNet's), conv5_1 or conv4_1; default: the decision network's, else the deepest that is at least 4x8 on the regions.")
  var featureLayer: String?

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
    do {
      if overlap.hasSuffix("%") {
        guard let percent = Double(overlap.dropLast()) else { throw ValidationError("--overlap '\(overlap)' is not a percentage") }
        return try RegionGrid(rows: rows, columns: columns, overlapShare: percent / 100)
      }
      guard let pixels = Int(overlap) else { throw ValidationError("--overlap '\(overlap)': expected pixels (e.g. 16) or a share of the height (e.g. 6.25%)") }
      return try RegionGrid(rows: rows, columns: columns, overlap: pixels)
    } catch let error as InferenceError {
      throw ValidationError("--regions/--overlap: \(error.message)")
    }
  }

  /// The segmenter of `policy` with the segmentation model on its device.
  func segmenter(policy: DynamicKeyFrameSegmenter.Policy, decision: LoadedDecision?) throws -> DynamicKeyFrameSegmenter {
    try segmenterAndManifest(policy: policy, decision: decision).segmenter
  }

  /// The segmenter, its model's manifest and the identity of its segmentation weights;
  /// a decision network measured against other weights is refused.
  func segmenterAndManifest(policy: DynamicKeyFrameSegmenter.Policy, decision: LoadedDecision?) throws
    -> (segmenter: DynamicKeyFrameSegmenter, manifest: ModelManifest, identity: SegmentationIdentity)
  {
    let chosen = try device.resolved()
    let run = try model.run(for: "segkit dvs", tasks: [.semantic])
    let loaded = try model.load(run: run?.layout, fallbackClasses: nil, requireWeights: true)
    guard loaded.manifest.task == .semantic else {
      throw ValidationError("the segmentation path needs a semantic model; \(loaded.manifest.model) is a \(loaded.manifest.task.rawValue) model")
    }
    let source = run?.layout.url.path ?? loaded.weights?.path ?? loaded.manifest.model
    let identity = try SegmentationIdentity(model: loaded.manifest.model, source: source, network: loaded.network)
    if let decision {
      do { try SegmentationIdentity.check(decision: decision.info.segmentation, decisionFile: decision.file, segmentation: identity) } catch let error as InferenceError {
        throw CommandError(error.message)
      }
    }
    guard let chosenPrecision = InferencePrecision(rawValue: precision), chosenPrecision != .int8 else {
      throw ValidationError("--precision must be fp32 or bf16 for dvs (int8 would need a calibration set), got '\(precision)'")
    }
    let image = try ImageSegmenter(model: loaded.network, device: chosen, normalization: loaded.manifest.normalization,
                                   precision: chosenPrecision)
    let flowNetwork = try self.flowNetwork(device: chosen)
    try decision?.network.to(device: chosen)
    // A warp-path run says how its flow network was trained to be used, and on whose logits.
    let flowRun = try? inferenceDefaults(of: RunLayout.existing(URL(fileURLWithPath: flow)))
    try checkTeacher(of: flowRun, against: run?.layout)
    let warp = warpAt ?? flowRun?.warpAt ?? "output"
    guard let resolution = WarpPath.Resolution(rawValue: warp) else { throw ValidationError("--warp-at '\(warp)': expected flow or output") }
    let scale = flowScale ?? flowRun?.flowInputScale ?? 1
    guard scale > 0, scale <= 16 else { throw ValidationError("--flow-scale must be more than 0 and at most 16, got \(scale)") }
    let layer = try featureLayer.map { name in
      guard let layer = FlowNetS.FeatureLayer(rawValue: name) else { throw ValidationError("--feature-layer '\(name)': expected conv6_1, conv5_1 or conv4_1") }
      return layer
    } ?? decision?.info.featureLayer
    return (try DynamicKeyFrameSegmenter(segmenter: image, flowNetwork: flowNetwork, decision: decision?.network, grid: try grid(), policy: policy,
                                         warpResolution: resolution, flowScale: scale, featureLayer: layer),
            loaded.manifest, identity)
  }

  /// The warp path's scale field is learnt on one segmentation run's logits: another
  /// run's are refused (DVSNet uses one segmentation network throughout).
  private func checkTeacher(of flowRun: ModelManifest.InferenceDefaults?, against run: RunLayout?) throws {
    guard let teacher = flowRun?.segmentationRun else { return }
    guard let here = run?.url.standardizedFileURL.path else {
      return warn("--flow \(flow): its warp path was trained on the logits of \(teacher); make sure --weights is that network")
    }
    guard teacher == here else {
      throw CommandError("--flow \(flow): its warp path (scale field) was trained on the logits of \(teacher), but the segmentation path here is \(here); train the warp path with --set segmentation_run=\(here), or pass --run \(teacher)")
    }
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

