import ArgumentParser
import Foundation
import SegKitData
import SegKitInference

/// How flow is computed: DIS with a preset, or a flow network with its weights.
struct FlowMethodArguments: ParsableArguments {
  enum Method: String, ExpressibleByArgument, CaseIterable {
    case dis
    /// flownet2-pytorch's FlowNet2-S (its checkpoint loads as it is).
    case flownet2s
    /// DVSNet's thin FlowNetS (3/8 of the widths), with SegKit's weights.
    case flownetsThin = "flownets_thin"
  }

  @Option(help: "The method: dis (OpenCV's dense inverse search), flownet2s or flownets_thin (with --weights).")
  var method = Method.dis

  @Option(help: "DIS's preset: ultrafast, fast or medium (the default: accurate on small frames, about 2.6× fast's time on 480p).")
  var preset = "\(OpticalFlow.Preset.default)"

  @Option(help: "DIS on frames enlarged this many times (1 to 8; the flow is brought back to the frames' size): finer motion boundaries on small frames, at that factor squared in time.")
  var upscale = 1

  @Option(help: "The network's weights for flownet2s (flownet2-pytorch's FlowNet2-S_checkpoint.pth.tar as it is) or flownets_thin.")
  var weights: String?

  @OptionGroup var device: DeviceArgument

  func validate() throws {
    switch (method, weights) {
    case (.dis, .some): throw ValidationError("--weights is for the flow networks (flownet2s, flownets_thin), not dis")
    case (.flownet2s, nil), (.flownetsThin, nil): throw ValidationError("--method \(method.rawValue) needs --weights")
    default: break
    }
    guard OpticalFlow.Preset.allCases.contains(where: { "\($0)" == preset }) else {
      throw ValidationError("--preset must be ultrafast, fast or medium, not '\(preset)'")
    }
    guard (1...8).contains(upscale) else { throw ValidationError("--upscale must be 1 to 8, not \(upscale)") }
    guard upscale == 1 || method == .dis else { throw ValidationError("--upscale is for dis, not \(method.rawValue)") }
  }

  /// The method, its network loaded on its device.
  func flowMethod() throws -> FlowMethod {
    let device = method == .dis ? Device.cpu : try self.device.resolved()
    if method == .dis, upscale != 1, let preset = OpticalFlow.Preset.allCases.first(where: { "\($0)" == preset }) {
      return .dis(preset, upscale: upscale)
    }
    do { return try NetworkFlow.method(method.rawValue, preset: preset, weights: weights, device: device) } catch let error as InferenceError {
      throw CommandError(error.message)
    }
  }

  /// What the method is, for the printed summary.
  var summary: String { method == .dis ? "dis, \(preset)" + (upscale == 1 ? "" : ", frames ×\(upscale)") : method.rawValue }
}
