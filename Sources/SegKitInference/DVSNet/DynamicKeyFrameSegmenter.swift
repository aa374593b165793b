import Foundation

/// Video semantic segmentation with dynamic key frames (DVSNet, Xu et al., CVPR 2018):
/// each region of a frame takes either the segmentation path (the segmentation network
/// on the region; the region becomes its own new key) or the flow path (the region's
/// key logits warped by the flow from the current region to its key, `WarpPath`). The
/// flow network runs on every region that has a key; its deepest features feed the
/// decision network, whose predicted confidence score against the target decides.
///
/// Frames go in order through `step` (or `next`, as a `SequenceSegmenter`); `reset`
/// starts a new video.
public final class DynamicKeyFrameSegmenter {
  /// How a region chooses its path.
  public enum Policy: Sendable, Equatable, CustomStringConvertible {
    /// The segmentation path everywhere: the per-frame reference.
    case everyFrame
    /// A new key every `k` frames, the flow path between (Deep Feature Flow's schedule).
    case fixedInterval(Int)
    /// DVSNet: the segmentation path where the predicted score falls below the target
    /// (percent). `dynamic`: a region's target drops by 1 after each of its segmentation
    /// steps and rises by 0.1 after each of its flow steps, as DVSNet's `--dynamic` (one
    /// target per region).
    case target(Double, dynamic: Bool)

    /// Named operating points: fast (target 80), balanced (90, DVSNet's default), slow (95).
    /// A policy by name: fast, balanced or slow (targets 80, 90, 95), target:T (0 to 100),
    /// interval:K (K ≥ 1) or every-frame; `dynamic` makes a target DVSNet's dynamic one.
    public static func parse(_ text: String, dynamic: Bool = false) throws -> Policy {
      if let preset = preset(text) {
        guard case .target(let t, _) = preset else { return preset }
        return .target(t, dynamic: dynamic)
      }
      if text == "every-frame" { return .everyFrame }
      if text.hasPrefix("target:"), let t = Double(text.dropFirst("target:".count)), (0...100).contains(t) {
        return .target(t, dynamic: dynamic)
      }
      if text.hasPrefix("interval:"), let k = Int(text.dropFirst("interval:".count)), k >= 1 { return .fixedInterval(k) }
      throw InferenceError("policy '\(text.prefix(40))': expected fast, balanced, slow, target:T (0 to 100), interval:K (K ≥ 1) or every-frame")
    }

    public static func preset(_ name: String) -> Policy? {
      switch name {
      case "fast": return .target(80, dynamic: false)
      case "balanced": return .target(90, dynamic: false)
      case "slow": return .target(95, dynamic: false)
      default: return nil
      }
    }

    public static let presetNames = ["fast", "balanced", "slow"]

    public var description: String {
      switch self {
      case .everyFrame: return "every frame"
      case .fixedInterval(let k): return "key every \(k) frames"
      case .target(let t, let dynamic): return String(format: "target %g", t) + (dynamic ? " (dynamic)" : "")
      }
    }
  }

  /// Paths taken, counted per region.
  public struct Counts: Sendable, Equatable {
    public var frames = 0
    public var segmentationSteps = 0
    public var flowSteps = 0

    public init(frames: Int = 0, segmentationSteps: Int = 0, flowSteps: Int = 0) {
      (self.frames, self.segmentationSteps, self.flowSteps) = (frames, segmentationSteps, flowSteps)
    }
  }

  /// What one frame cost and gave.
  public struct Step {
    /// The label map [H, W] (int64, on the CPU).
    public let labels: Tensor
    /// Per region: whether it took the segmentation path, and the predicted score when the decision network ran.
    public let segmented: [Bool]
    public let predictedScores: [Double?]
  }

  public let segmenter: ImageSegmenter
  public let flowNetwork: FlowNetS
  public let decision: DecisionNetwork?
  public let grid: RegionGrid
  public let policy: Policy
  /// Where the key logits are warped (see `WarpPath.Resolution`).
  public let warpResolution: WarpPath.Resolution
  /// The factor regions are resized by for the flow network (DVSNet: 0.5).
  public let flowScale: Double
  /// The flow network's layer the decision network reads (nil: the deepest whose
  /// native size covers the decision grid, per region).
  public let featureLayer: FlowNetS.FeatureLayer?
  public private(set) var counts = Counts()
  /// The target in force in each region (they move apart with a dynamic policy).
  public private(set) var targets: [Double] = []
  private let initialTarget: Double

  private struct Key {
    let frame: Tensor
    let logits: Tensor
    var age: Int
  }
  private var keys: [Key?] = []

  public init(
    segmenter: ImageSegmenter, flowNetwork: FlowNetS, decision: DecisionNetwork?, grid: RegionGrid, policy: Policy,
    warpResolution: WarpPath.Resolution = .output, flowScale: Double = 1, featureLayer: FlowNetS.FeatureLayer? = nil
  ) throws {
    guard flowScale > 0, flowScale <= 16 else { throw InferenceError("a flow input scale of \(flowScale): expected more than 0 and at most 16") }
    switch policy {
    case .target(let t, _):
      guard decision != nil else { throw InferenceError("a target policy needs a decision network") }
      guard t.isFinite else { throw InferenceError("target \(t) is not a number") }
      initialTarget = t
    case .fixedInterval(let k):
      guard k >= 1 else { throw InferenceError("a key every \(k) frames: the interval must be at least 1") }
      initialTarget = 0
    case .everyFrame:
      initialTarget = 0
    }
    if let decision, case let layer = featureLayer ?? .conv6_1, flowNetwork.channels(of: layer) != decision.featureChannels {
      throw InferenceError("the decision network reads \(decision.featureChannels) channels but the flow network's \(layer) has \(flowNetwork.channels(of: layer))")
    }
    let classes = segmenter.model.classes
    if let scaleClasses = flowNetwork.scaleClasses, scaleClasses != classes {
      throw InferenceError("the flow network's scale field has \(scaleClasses) classes but the segmentation model \(classes)")
    }
    self.segmenter = segmenter
    self.flowNetwork = flowNetwork
    self.decision = decision
    self.grid = grid
    self.policy = policy
    self.warpResolution = warpResolution
    self.flowScale = flowScale
    // A decision network whose layer is not named was trained on DVSNet's conv6_1.
    self.featureLayer = featureLayer ?? (decision != nil ? .conv6_1 : nil)
    flowNetwork.eval()
    decision?.eval()
  }

  /// Forgets every key and restores the targets: the next frame starts a new video.
  public func reset() {
    keys = []
    targets = []
  }

  /// Segments the next frame of the video.
  public func step(_ frame: Image) throws -> Step {
    try Torch.withInferenceMode {
      let device = segmenter.device
      let normalized = try segmenter.normalization.batch(frame).to(device)
      let rgb = try Self.pixels(frame).to(device)
      let regions = try grid.regions(height: frame.height, width: frame.width)
      if keys.count != regions.count { keys = Array(repeating: nil, count: regions.count) }
      if targets.count != regions.count { targets = Array(repeating: initialTarget, count: regions.count) }
      var scores: [Tensor] = [], segmented: [Bool] = [], predicted: [Double?] = []
      for (index, region) in regions.enumerated() {
        let current = try Self.crop(rgb, region)
        // The decision first (DVSNet's figure: segment, or warp the key), then the path it names.
        let (path, prediction) = try decide(keys[index], current: current, target: targets[index])
        let result: Tensor
        switch path {
        case .warp(let key, let flow):
          result = try WarpPath.scores(
            keyLogits: key.logits, flowToKey: try Self.flowInGridPixels(flow.flow2), scale: flow.scale,
            size: Size2(region.height, region.width), resolution: warpResolution)
          keys[index]?.age += 1
          counts.flowSteps += 1
          if case .target(_, true) = policy { targets[index] += 0.1 }
        case .segment:
          result = try segmenter.scores(batch: try Self.crop(normalized, region)).to(device)
          keys[index] = Key(frame: current, logits: result, age: 0)
          counts.segmentationSteps += 1
          if case .target(_, true) = policy { targets[index] -= 1 }
        }
        scores.append(try result.squeeze(dim: 0))
        segmented.append(keys[index]?.age == 0)
        predicted.append(prediction)
      }
      counts.frames += 1
      let labels = try grid.merge(scores, height: frame.height, width: frame.width).to(.cpu)
      return Step(labels: labels, segmented: segmented, predictedScores: predicted)
    }
  }

  /// What a region does this frame.
  private enum Path {
    /// Run the segmentation network; the region becomes its own key.
    case segment
    /// Warp the key's logits by the flow from the region to its key.
    case warp(Key, FlowNetS.Output)
  }

  /// The path of a region whose key is `key` (nil: it has none yet), and the decision
  /// network's predicted confidence score where the policy asked it. Fixed schedules
  /// decide by the key's age; a target policy warps unless the prediction falls below
  /// the target.
  private func decide(_ key: Key?, current: Tensor, target: Double) throws -> (path: Path, prediction: Double?) {
    guard let key else { return (.segment, nil) }
    let interval: Int? = if case .fixedInterval(let k) = policy { k } else { nil }
    let keyIsDue = policy == .everyFrame || interval.map { key.age + 1 >= $0 } == true
    if keyIsDue { return (.segment, nil) }
    let flow = try flowNetwork.output(from: current, to: key.frame, scale: flowScale)
    guard case .target = policy, let decision else { return (.warp(key, flow), nil) }
    let prediction: Double = try decision.forward(features(of: flow, regionSize: Size2(current.shape[2], current.shape[3]))).item()
    let needSegment = prediction < target
    return (needSegment ? .segment : .warp(key, flow), prediction)
  }

  /// For training the decision network: for each key frame and each region, the flow
  /// network's features for the pair (current frame, key frame) and the confidence
  /// score of the warp path from the key to the current frame against the
  /// segmentation path on the current frame (`RegionConfidence`, percent; nil where
  /// the reference is all void). The current frame is segmented once for all keys.
  public func decisionSamples(current: Image, keys: [Image], ignoreIndex: Int = 255) throws
    -> [[(features: Tensor, score: Double?)]]
  {
    for key in keys where current.width != key.width || current.height != key.height {
      throw InferenceError("frames of \(current.width)×\(current.height) and \(key.width)×\(key.height): a pair needs one size")
    }
    return try Torch.withInferenceMode {
      let device = segmenter.device
      let regions = try grid.regions(height: current.height, width: current.width)
      let currentInput = try segmenter.normalization.batch(current).to(device), currentPixels = try Self.pixels(current).to(device)
      let references = try regions.map { try segmenter.scores(batch: try Self.crop(currentInput, $0)).argmax(dim: 1) }
      return try keys.map { key in
        let keyInput = try segmenter.normalization.batch(key).to(device), keyPixels = try Self.pixels(key).to(device)
        return try zip(regions, references).map { region, reference in
          let output = try flowNetwork.output(from: try Self.crop(currentPixels, region), to: try Self.crop(keyPixels, region), scale: flowScale)
          let keyLogits = try segmenter.scores(batch: try Self.crop(keyInput, region)).to(device)
          let warped = try WarpPath.scores(
            keyLogits: keyLogits, flowToKey: try Self.flowInGridPixels(output.flow2), scale: output.scale,
            size: Size2(region.height, region.width), resolution: warpResolution).to(.cpu).argmax(dim: 1)
          let score = try RegionConfidence.score(warped, reference: reference, ignoreIndex: ignoreIndex)
          return (try features(of: output, regionSize: Size2(region.height, region.width)).to(.cpu), score)
        }
      }
    }
  }

  /// The decision network's input from a flow output on a region of `regionSize`.
  func features(of output: FlowNetS.Output, regionSize: Size2) -> Tensor {
    output.features(at: resolvedFeatureLayer(regionSize: regionSize))
  }

  /// `featureLayer`, or the deepest layer covering the decision grid (DVSNet's 4×8 without one).
  public func resolvedFeatureLayer(regionSize: Size2) -> FlowNetS.FeatureLayer {
    if let featureLayer { return featureLayer }
    let input = Size2(Int((Double(regionSize.height) * flowScale).rounded()), Int((Double(regionSize.width) * flowScale).rounded()))
    return FlowNetS.FeatureLayer.deepest(covering: decision?.grid ?? Size2(4, 8), input: input)
  }

  /// `predict_flow2` in pixels of its own grid (1/4 of the network's input): × 20 / 4.
  static func flowInGridPixels(_ flow2: Tensor) throws -> Tensor { try flow2 * (FlowNetS.flowScale / 4) }

  /// An RGB frame as [1, 3, H, W] float32 values 0…255, the flow network's input.
  static func pixels(_ frame: Image) throws -> Tensor { try (frame.rgb().tensor() * 255).unsqueeze(0) }

  static func crop(_ x: Tensor, _ region: RegionGrid.Region) throws -> Tensor {
    try x.narrow(dim: 2, start: region.top, length: region.height).narrow(dim: 3, start: region.left, length: region.width)
  }
}

extension DynamicKeyFrameSegmenter: SequenceSegmenter {
  /// Starts a new video (semantic segmentation takes no first mask).
  public func start(firstFrame: Image, mask: Image?) throws -> Image {
    reset()
    return try next(firstFrame)
  }

  public func next(_ frame: Image) throws -> Image {
    try Image(tensor: try step(frame).labels.to(.uint8))
  }
}
