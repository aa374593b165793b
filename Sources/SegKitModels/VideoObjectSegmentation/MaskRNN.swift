import SegKitNN

/// MaskRNN (Hu, Huang and Schwing, NIPS 2017) for one object at frame t, as its figure
/// draws it:
///
///     appearance.*   the appearance stream: an OSVOS network on 4 channels, the frame
///                    and the previous mask warped to frame t
///     flow.*         the flow stream: an OSVOS network on [‖flow t→t−1‖, ‖flow t→t+1‖,
///                    warped previous mask] (tfvos's input; zero where a neighbour is missing)
///     fusion.*       the streams' fused logits combined: their sum, or a learned 1×1
///                    convolution over the two (started as the sum)
///     localiser.*    the object localiser (`ObjectLocaliser`) on the appearance stream's
///                    deepest features (conv5_3 for VGG16, layer4 for ResNets) or the
///                    level before (`LocaliserFeatures`): the warped mask's enlarged box
///                    refined; the fused logits outside it (enlarged by its
///                    `gateEnlargement`) become background
///
/// The streams keep OSVOS's keys inside their prefix (`appearance.stages.0.0.weight`,
/// `flow.side_prep.0.weight`, …), so an OSVOS parent loads into both with
/// `loadStreams(from:newChannel:)`. Masks enter as 255·m − 128 for streams on
/// Caffe's input (tfvos centres its 0/255 masks by 128) and 2m − 1 for ImageNet's.
///
/// As a `SegmentationNetwork` (`maskrnn_vgg16`, `maskrnn_resnet18`, … in the zoo) it
/// takes the three inputs stacked, [N, 6, H, W]: the normalised frame, the 0/1 warped
/// mask and the two flow magnitudes; its extras are `fused` (before the box), each
/// stream's fused logits and side outputs (`appearance`, `appearance_side2`, …, `flow`,
/// `flow_side5`).
public final class MaskRNN: Module, SegmentationNetwork {
  /// How the two streams' logits combine.
  public enum Fusion: String, CaseIterable, Sendable {
    /// Their sum: the product of the streams' odds, right for streams that are each
    /// a segmenter (trained on their own losses, as tfvos trains them apart), with
    /// nothing to learn. The default.
    case sum
    /// A 1×1 convolution over the two logit maps, started as the sum; trains with the streams.
    case learned
  }

  /// Which of the appearance stream's feature levels the localiser pools its RoI from.
  public enum LocaliserFeatures: String, CaseIterable, Sendable {
    /// The level before the deepest (ResNet layer3, stride 16; VGG16 conv4_3, stride 8):
    /// twice the spatial support, which a small frame needs (a 128×96 frame is 4×3 cells at stride 32).
    case layer3
    /// The deepest level (ResNet layer4, stride 32; VGG16 conv5_3, stride 16). The default.
    case layer4

    /// Its 1-based level in the encoder (as `ObjectLocaliser.featureLevel` keeps it).
    public var level: Int { self == .layer3 ? 3 : 4 }

    public init?(level: Int) {
      guard let features = Self.allCases.first(where: { $0.level == level }) else { return nil }
      self = features
    }
  }

  /// What fills the appearance stream's new input channel in `loadStreams`.
  public enum NewChannel: Sendable {
    /// N(0, std²) filters (tfvos: std 0.001): the stream starts almost as the RGB network.
    case normal(std: Double)
    /// The mean of the RGB filters.
    case mean
  }

  public let appearance: OSVOS
  public let flow: OSVOS
  public let fusion: Fusion
  let fusionConvolution: Conv2d?
  public let localiser: ObjectLocaliser?

  /// Both streams over `encoder` (`vgg16`: OSVOS itself; any other encoder of the
  /// zoo: OSVOS's figure over it), with or without the object localiser.
  public convenience init(
    encoder: String = "vgg16", fusion: Fusion = .sum, localisation: Bool = true, localiserFeatures: LocaliserFeatures = .layer4
  ) throws {
    guard EncoderRegistry.names.contains(encoder) else {
      throw ModelError("MaskRNN: no OSVOS network over '\(encoder)'; streams take \(EncoderRegistry.names.joined(separator: ", "))")
    }
    try self.init(appearance: try OSVOS(encoder: encoder, inputChannels: 4), flow: try OSVOS(encoder: encoder, inputChannels: 3),
                  fusion: fusion, localisation: localisation, localiserFeatures: localiserFeatures)
  }

  /// MaskRNN from its two streams: the appearance stream takes the frame and the warped
  /// mask (4 channels), the flow stream the flow magnitudes (3).
  public init(
    appearance: OSVOS, flow: OSVOS, fusion: Fusion = .sum, localisation: Bool = true, localiserFeatures: LocaliserFeatures = .layer4
  ) throws {
    self.appearance = appearance
    self.flow = flow
    self.fusion = fusion
    fusionConvolution = fusion == .learned ? try Conv2d(2, 1, kernelSize: 1) : nil
    let level = localiserFeatures.level - 1
    localiser = localisation
      ? try ObjectLocaliser(featureChannels: appearance.encoder.featureChannels[level], featureStride: appearance.encoder.featureStrides[level],
                            featureLevel: localiserFeatures.level)
      : nil
    super.init()
    registerModule("appearance", appearance)
    registerModule("flow", flow)
    if let fusionConvolution {
      registerModule("fusion", fusionConvolution)
      try Torch.withNoGrad {
        try fusionConvolution.weight.fill_(1)
        try fusionConvolution.bias?.zero_()
      }
    }
    if let localiser { registerModule("localiser", localiser) }
  }

  /// The input normalisation of the frame (the appearance stream's encoder's).
  public var inputNormalization: InputNormalization { appearance.inputNormalization }

  public let classes = 1
  public let outputNames = ["out", "fused", "appearance", "flow"]
    + ["appearance", "flow"].flatMap { stream in (2...5).map { "\(stream)_side\($0)" } }
  public var encoder: any Encoder { appearance.encoder }
  public var encoderKeyPrefix: String { "appearance." + appearance.encoderKeyPrefix }

  /// The stacked input [N, 6, H, W] (frame, warped mask, flow magnitudes); see `forward(image:warpedMask:flowMagnitudes:)`.
  public func forward(_ x: Tensor) throws -> SegmentationOutput {
    guard x.rank == 4, x.shape[1] == 6 else {
      throw ModelError("MaskRNN takes [N, 6, H, W]: the frame, the warped previous mask and two flow magnitudes; got \(x.shape)")
    }
    let output = try forward(image: x.narrow(dim: 1, start: 0, length: 3), warpedMask: x.narrow(dim: 1, start: 3, length: 1),
                             flowMagnitudes: x.narrow(dim: 1, start: 4, length: 2))
    return SegmentationOutput(out: output.out, extras: try output.extras())
  }

  /// Evaluation mode, each stream optimised as OSVOS is (`OSVOS.optimizeForInference`,
  /// computing in `dtype`); the fusion and the localiser stay float32.
  public func optimizeForInference(channelsLast: Bool, dtype: DType) throws {
    try appearance.optimizeForInference(channelsLast: channelsLast, dtype: dtype)
    try flow.optimizeForInference(channelsLast: channelsLast, dtype: dtype)
    eval()
    try foldBatchNorm()
    try fuseActivations()
  }

  /// The MaskRNN over `encoder` whose parts `state` holds: a learned fusion when it has
  /// `fusion.weight`, the localiser when it has `localiser.*`, on the features its
  /// `localiser.feature_level` names (layer4 when a checkpoint predates it).
  public static func matching(_ state: StateDict, encoder: String) throws -> MaskRNN {
    try MaskRNN(encoder: encoder, fusion: state.names.contains("fusion.weight") ? .learned : .sum,
                localisation: state.names.contains { $0.hasPrefix("localiser.") }, localiserFeatures: try localiserFeatures(of: state))
  }

  /// The features a checkpoint's localiser reads: its `localiser.feature_level`, else layer4
  /// (checkpoints made before the level was kept read layer4).
  public static func localiserFeatures(of state: StateDict) throws -> LocaliserFeatures {
    guard let tensor = state["localiser.feature_level"] else { return .layer4 }
    let level = try tensor.item()
    guard let features = LocaliserFeatures(level: Int(level)) else {
      throw ModelError("localiser.feature_level is \(level), not 3 (layer3) or 4 (layer4)")
    }
    return features
  }

  /// The localiser's buffers that checkpoints made before they were kept lack: loading
  /// one of those leaves the model's value.
  static let laterLocaliserBuffers = ["localiser.proposal_enlargement", "localiser.gate_enlargement", "localiser.feature_level"]

  /// Loads MaskRNN weights; a checkpoint without one of the localiser's later buffers
  /// leaves the model's value; one whose localiser reads other features is refused
  /// (with VGG16 both levels have 512 channels, so the shapes alone would not tell).
  @discardableResult
  public func load(_ state: StateDict) throws -> LoadReport {
    if let localiser, try Self.localiserFeatures(of: state).level != localiser.featureLevel {
      throw ModelError("the weights' localiser reads \(try Self.localiserFeatures(of: state).rawValue) features, this MaskRNN's layer\(localiser.featureLevel)")
    }
    let absent = Set(Self.laterLocaliserBuffers.filter { !state.names.contains($0) })
    return try loadStateDict(state, skip: absent.isEmpty ? nil : { absent.contains($0) })
  }

  /// A 0/1 mask [N, 1, H, W] as the streams read it.
  public func maskChannel(_ mask: Tensor) throws -> Tensor {
    inputNormalization.pixelDivisor == 1 ? try mask * 255 - 128 : try mask * 2 - 1
  }

  /// The streams' outputs and their fused logits.
  public struct Output {
    /// The fused logits [N, 1, H, W], background outside `box` when there is one.
    public var out: Tensor
    /// The fused logits before the box.
    public var fused: Tensor
    public var appearance: SegmentationOutput
    public var flow: SegmentationOutput
    /// The proposals [N, 4] from the warped masks (nil without a localiser or with an empty mask).
    public var proposal: Tensor?
    /// The localiser's refined boxes [N, 4].
    public var box: Tensor?
    /// The localiser's deltas [N, 4] from `proposal` to `box` (what its loss compares).
    public var boxDeltas: Tensor?

    /// The per-pixel outputs by `outputNames` (all but `out`).
    func extras() throws -> [String: Tensor] {
      var extras = ["fused": fused, "appearance": appearance.out, "flow": flow.out]
      for (stream, output) in [("appearance", appearance), ("flow", flow)] {
        for (name, tensor) in output.extras { extras["\(stream)_\(name)"] = tensor }
      }
      return extras
    }
  }

  /// - Parameters:
  ///   - image: the frame, normalised (`inputNormalization`), [N, 3, H, W].
  ///   - warpedMask: the previous frame's mask warped to this frame, 0/1, [N, 1, H, W].
  ///   - flowMagnitudes: ‖flow t→t−1‖ and ‖flow t→t+1‖ in pixels, [N, 2, H, W].
  public func forward(image: Tensor, warpedMask: Tensor, flowMagnitudes: Tensor) throws -> Output {
    guard image.rank == 4, image.shape[1] == 3, warpedMask.rank == 4, warpedMask.shape[1] == 1,
      flowMagnitudes.rank == 4, flowMagnitudes.shape[1] == 2,
      warpedMask.shape[2...] == image.shape[2...], flowMagnitudes.shape[2...] == image.shape[2...]
    else {
      throw ModelError("MaskRNN takes an [N, 3, H, W] frame, an [N, 1, H, W] mask and [N, 2, H, W] flow magnitudes of one size; got \(image.shape), \(warpedMask.shape), \(flowMagnitudes.shape)")
    }
    let mask = try maskChannel(warpedMask)
    let (appearanceOutput, features) = try appearance.forwardWithFeatures(Tensor.cat([image, mask], dim: 1))
    let flowOutput = try flow(Tensor.cat([flowMagnitudes, mask], dim: 1))
    var out = try fusionConvolution.map { try $0(Tensor.cat([appearanceOutput.out, flowOutput.out], dim: 1)) }
      ?? appearanceOutput.out + flowOutput.out
    var output = Output(out: out, fused: out, appearance: appearanceOutput, flow: flowOutput)
    // Localisation needs every image's warped mask to hold the object; an empty one leaves the logits as they are.
    if let localiser {
      let proposals = try (0..<image.shape[0]).map {
        try ObjectLocaliser.proposal(from: warpedMask.select(dim: 0, index: $0), enlargement: localiser.proposalEnlargement)
      }
      if proposals.allSatisfy({ $0 != nil }) {
        let proposal = try Tensor(proposals.flatMap { $0 ?? [] }.map { Float($0) }, shape: [proposals.count, 4]).to(image.device)
        let deltas = try localiser.deltas(features: features[localiser.featureLevel - 1], proposals: proposal,
                                          batchIndices: Array(0..<proposals.count))
        let box = try ObjectLocaliser.decode(deltas, relativeTo: proposal)
        out = try ObjectLocaliser.gate(out, boxes: ObjectLocaliser.enlarge(box, by: localiser.gateEnlargement))
        (output.out, output.proposal, output.box, output.boxDeltas) = (out, proposal, box, deltas)
      }
    }
    return output
  }

  /// Loads a one-stream OSVOS parent (3 input channels: an OSVOS-PyTorch or SegKit
  /// checkpoint of the same encoder) into both streams: the flow stream as it is, the
  /// appearance stream with its first convolution widened to the mask channel by
  /// `newChannel` (the input-channel "surgery").
  @discardableResult
  public func loadStreams(from parent: StateDict, newChannel: NewChannel = .normal(std: 0.001)) throws -> (LoadReport, LoadReport) {
    let inputKey = appearance.encoderKeyPrefix + appearance.encoder.inputConvolutionKey
    guard let filters = parent[inputKey] else {
      throw ModelError("the parent has no \(inputKey): not an OSVOS network over this encoder")
    }
    guard filters.rank == 4, filters.shape[1] == 3 else {
      throw ModelError("the parent's \(inputKey) is \(filters.shape), not the filters of a 3-channel input")
    }
    let extra: Tensor
    switch newChannel {
    case .normal(let std):
      extra = try Tensor.randn([filters.shape[0], 1, filters.shape[2], filters.shape[3]]).to(filters.dtype) * std
    case .mean:
      extra = try filters.mean(dim: 1, keepDim: true)
    }
    let widened = try Tensor.cat([filters, extra], dim: 1)
    let appearanceReport = try appearance.loadStateDict(parent.map { ($0.name, $0.name == inputKey ? widened : $0.tensor) })
    let flowReport = try flow.loadStateDict(parent.map { ($0.name, $0.tensor) })
    return (appearanceReport, flowReport)
  }
}
