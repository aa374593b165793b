import Foundation

/// Optical flow by a FlowNetS network with DIS's contract (`OpticalFlow.dis`): the
/// `FlowField` from frame A to frame B in pixels, A(x) ≈ B(x + F(x)), at A's size.
/// FlowNet2-S loads flownet2-pytorch's checkpoint (`state_dict` of its `.pth.tar`)
/// unmodified; the thin FlowNetS loads SegKit's own weights.
public final class NetworkFlow {
  public let network: FlowNetS
  public let device: Device

  /// The flow cache's record of this network: its name and its weights' fingerprint.
  public let settings: FlowCache.Settings

  public init(widths: FlowNetS.Widths, weights: URL, device: Device = .cpu) throws {
    settings = FlowCache.Settings(method: widths == .full ? "flownet2s" : "flownets_thin", weights: try FlowMethod.fingerprint(of: weights))
    let state = try ModelLoader.readWeights(weights)
    // A thin FlowNetS trained as DVSNet's flow path carries its scale head; it is built to fit.
    network = try FlowNetS(widths: widths, scaleClasses: state["predict_scale.weight"].map { $0.shape[0] })
    do {
      try network.loadStateDict(state)
    } catch {
      throw InferenceError("\(weights.path): not the weights of this FlowNetS (\(error))")
    }
    self.device = device
    try network.to(device: device)
    network.eval()
  }

  /// The flow network of a `task: flow` run folder (its manifest names it), with the
  /// run's latest checkpoint or final weights.
  public convenience init(run: RunLayout, device: Device = .cpu) throws {
    let manifest = try run.manifest()
    guard manifest.task == .flow, let widths = ModelFamily(name: manifest.model)?.flowWidths else {
      throw InferenceError("\(run.url.path): a run of \(manifest.model) (task \(manifest.task.rawValue)), not of a flow network")
    }
    try self.init(widths: widths, weights: try run.latestCheckpointURL(), device: device)
  }

  /// A flow method by its settings' names: `dis` with DIS's preset (ultrafast, fast or
  /// medium), or a flow network (flownet2s, flownets_thin) with its weights.
  public static func method(_ name: String, preset: String?, weights: String?, device: Device = .cpu) throws -> FlowMethod {
    if name == "dis" {
      let chosen = preset ?? "\(OpticalFlow.Preset.default)"
      guard let preset = OpticalFlow.Preset.allCases.first(where: { "\($0)" == chosen }) else {
        throw InferenceError("DIS preset '\(chosen)': expected ultrafast, fast or medium")
      }
      return .dis(preset)
    }
    guard let widths = ModelFamily(name: name)?.flowWidths, let weights else {
      throw InferenceError("'\(name)' needs a flow network (flownet2s, flownets_thin) and its weights")
    }
    do { return try NetworkFlow(widths: widths, weights: URL(fileURLWithPath: weights), device: device).method } catch {
      throw InferenceError("flow weights \(weights): \(error)")
    }
  }

  /// This network as a flow cache's method (one frame at a time).
  public var method: FlowMethod {
    FlowMethod(settings: settings, parallel: false) { try self.flow(from: $0, to: $1) }
  }

  public func flow(from a: Image, to b: Image) throws -> FlowField {
    guard a.width == b.width, a.height == b.height else {
      throw InferenceError("frames of \(a.width)×\(a.height) and \(b.width)×\(b.height): a flow needs two frames of one size")
    }
    func rgb(_ image: Image) throws -> Tensor { try (image.rgb().tensor() * 255).unsqueeze(0).to(device) }
    let flow = try Torch.withInferenceMode { try network.flow(from: try rgb(a), to: try rgb(b)) }
    return try FlowField(tensor: try flow.squeeze(dim: 0).to(.cpu))
  }
}
