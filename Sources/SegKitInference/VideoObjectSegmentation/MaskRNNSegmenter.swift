import Foundation

/// MaskRNN's recurrent inference for one object: frame t's predicted mask is warped
/// to frame t+1 with the flow from t+1 to t (DIS) and fed back with frame t+1 and
/// the flow magnitudes ‖flow t+1→t‖ and ‖flow t+1→t+2‖ (zero where a neighbour is
/// missing); the fused, localised logits above 0 (probability ½) are the new mask.
///
/// `segment(_:firstMask:)` sees the whole sequence and so has both flows; as a
/// `SequenceSegmenter` (frames arriving one by one, e.g. from a video) the next
/// frame is not known yet and its flow counts as zero.
public final class MaskRNNSegmenter: SequenceSegmenter {
  /// Which of the network's logits make the mask that is carried on: MaskRNN's own
  /// (`full`) or a part of the network, for the ablation (`segkit vos ablation`). Each
  /// stream is trained on its own loss too, so each is a segmenter by itself.
  public enum Readout: String, CaseIterable, Sendable {
    /// The appearance stream alone.
    case appearance
    /// The flow stream alone.
    case flow
    /// The two streams fused, without the localiser's box.
    case streams
    /// The fused logits gated by the localiser's box (MaskRNN; the same as `streams`
    /// for a network without a localiser).
    case full
  }

  public let model: MaskRNN
  public let device: Device
  /// How the flows to the neighbouring frames are computed (DIS by default, or a flow network).
  public let flow: FlowMethod
  public let readout: Readout
  /// Seconds spent computing flow and in the network, for the benchmark.
  public private(set) var flowSeconds = 0.0
  public private(set) var networkSeconds = 0.0
  private var previous: (frame: Image, mask: Image)?

  public convenience init(model: MaskRNN, device: Device = .cpu, flowPreset: OpticalFlow.Preset = .fast, readout: Readout = .full) throws {
    try self.init(model: model, device: device, flow: .dis(flowPreset), readout: readout)
  }

  /// The network runs on its fast inference path (`MaskRNN.optimizeForInference`) in
  /// fp32, or with `precision` bf16 its streams in bfloat16. int8 is refused: its
  /// streams read masks and flow whose ranges a calibration would have to cover.
  public init(model: MaskRNN, device: Device = .cpu, flow: FlowMethod, readout: Readout = .full,
              precision: InferencePrecision = .fp32) throws {
    guard precision != .int8 else { throw InferenceError("MaskRNN runs in fp32 or bf16; int8 is not built for it") }
    if precision == .bf16 { try Torch.requireBFloat16Convolutions(on: device) }
    self.model = model
    self.device = device
    self.flow = flow
    self.readout = readout
    try model.to(device: device)
    model.eval()
    try model.optimizeForInference(channelsLast: true, dtype: precision == .bf16 ? .bfloat16 : .float32)
  }

  /// Starts on the first frame and its object mask (non-zero pixels; returned as 0/1).
  public func start(firstFrame: Image, mask: Image?) throws -> Image {
    let object = try Image.objectMask(mask, of: firstFrame)
    previous = (firstFrame, object)
    return object
  }

  public func next(_ frame: Image) throws -> Image { try step(frame, following: nil) }

  public func next(_ frame: Image, following: Image?) throws -> Image { try step(frame, following: following) }

  /// A frame's flows to the frame before it and (when known) the one after.
  public struct FrameFlows {
    public let backward: FlowField
    public let forward: FlowField?
  }

  /// `frame`'s flows (by `flow`) to the current frame and to `following`; the same for every
  /// object of a sequence, so `MaskRNNObjectsSegmenter` computes them once per frame.
  public func flows(_ frame: Image, following: Image?) throws -> FrameFlows {
    guard let previous else { throw InferenceError("next(_:) before start(firstFrame:mask:): the sequence has not begun") }
    guard frame.width == previous.frame.width, frame.height == previous.frame.height else {
      throw InferenceError("a \(frame.width)×\(frame.height) frame in a \(previous.frame.width)×\(previous.frame.height) sequence")
    }
    let start = Date()
    defer { flowSeconds += Date().timeIntervalSince(start) }
    return FrameFlows(backward: try flow.compute(frame, previous.frame), forward: try following.map { try flow.compute(frame, $0) })
  }

  /// The object's probability [H, W] for the next frame (with its `flows` when already
  /// computed); its mask (above ½) becomes the one carried on.
  public func advance(_ frame: Image, following: Image?, flows: FrameFlows? = nil) throws -> Tensor {
    let probability = try probabilities(frame, flows: try flows ?? self.flows(frame, following: following))
    previous = (frame, try Image(tensor: (probability .> 0.5).to(.float32).unsqueeze(0) / 255))
    return probability
  }

  /// The 0/1 mask carried to the next frame: the last one predicted, or the one `carry` set.
  public var carriedMask: Image? { previous?.mask }

  /// Replaces the mask carried to the next frame (0/1, or any non-zero pixel as 1),
  /// e.g. by this object's part of the merged instance map (`MaskRNNObjectsSegmenter`).
  public func carry(_ mask: Image) throws {
    guard let previous else { throw InferenceError("carry(_:) before start(firstFrame:mask:): the sequence has not begun") }
    self.previous = (previous.frame, try Image.objectMask(mask, of: previous.frame))
  }

  /// The masks of every frame of a sequence from the first frame's mask (which is returned first).
  public func segment(_ frames: [Image], firstMask: Image) throws -> [Image] {
    guard let first = frames.first else { return [] }
    var masks = [try start(firstFrame: first, mask: firstMask)]
    for index in frames.indices.dropFirst() {
      masks.append(try step(frames[index], following: index + 1 < frames.count ? frames[index + 1] : nil))
    }
    return masks
  }

  /// The object's probability [H, W] for `frame` after the current one, without moving on.
  func probabilities(_ frame: Image, flows: FrameFlows) throws -> Tensor {
    guard let previous else { throw InferenceError("next(_:) before start(firstFrame:mask:): the sequence has not begun") }
    guard flows.backward.width == frame.width, flows.backward.height == frame.height else {
      throw InferenceError("a \(flows.backward.width)×\(flows.backward.height) flow for a \(frame.width)×\(frame.height) frame")
    }
    let warped = try FlowWarp.warp(mask: previous.mask, by: flows.backward)
    let magnitudes = try Tensor.cat([try Self.magnitude(flows.backward),
                                     try flows.forward.map(Self.magnitude) ?? Tensor.zeros([1, frame.height, frame.width])], dim: 0)
    let networkStart = Date()
    let image = try model.inputNormalization.batch(frame).to(device)
    let mask = try (try warped.labelTensor() .!= 0).to(.float32).unsqueeze(0).unsqueeze(0).to(device)
    let logits = try Torch.withInferenceMode { () throws -> Tensor in
      let output = try model.forward(image: image, warpedMask: mask, flowMagnitudes: magnitudes.unsqueeze(0).to(device))
      switch readout {
      case .appearance: return output.appearance.out
      case .flow: return output.flow.out
      case .streams: return output.fused
      case .full: return output.out
      }
    }
    let probability = try logits.sigmoid().squeeze(dim: 0).squeeze(dim: 0).to(.cpu)
    networkSeconds += Date().timeIntervalSince(networkStart)
    return probability
  }

  private func step(_ frame: Image, following: Image?) throws -> Image {
    _ = try advance(frame, following: following)
    guard let mask = previous?.mask else { throw InferenceError("the sequence has not begun") }
    return mask
  }

  /// ‖F‖ per pixel, [1, H, W].
  static func magnitude(_ flow: FlowField) throws -> Tensor {
    try flow.tensor().pow(2).sum(dim: 0, keepDim: true).sqrt()
  }
}
