import SegKitNN

/// Floating-point operations of one forward pass, counted from the layers that
/// actually run, with the convention of torch.utils.flop_counter: a multiply-add
/// is 2 FLOPs; convolutions and linear layers are counted, bias, normalisation,
/// activations, pooling and resampling are not.
public enum FLOPCounter {
  /// FLOPs of `model` on one 3×size×size image (size a multiple of 64).
  ///
  /// Running large images through dozens of models would take minutes, so the
  /// model runs at 64 and 128 pixels: a layer whose output grew exactly 4× scales
  /// with the image area, and a layer whose output did not change (image-level
  /// pooling branches) is independent of it. Any other layer falls back to a
  /// forward at the full size, so the count is always exact.
  public static func count(_ model: any SegmentationNetwork, size: Int = 512, inputChannels: Int = 3) throws -> Int {
    model.eval()
    func trace(_ side: Int) throws -> [ForwardTrace.Call] {
      let x = try Tensor.zeros([1, inputChannels, side, side])
      return try Torch.withInferenceMode { try ForwardTrace.record { try model(x) }.trace.calls }
    }
    let small = try trace(64), large = try trace(128)
    let areaScale = (size / 64) * (size / 64)
    guard size % 64 == 0, small.count == large.count else { return try trace(size).reduce(0) { $0 + flops($1) } }
    var total = 0
    for (a, b) in zip(small, large) {
      let growth = Double(b.outputShape.reduce(1, *)) / Double(a.outputShape.reduce(1, *))
      switch growth {
      case 4: total += flops(a) * areaScale
      case 1: total += flops(a)
      default: return try trace(size).reduce(0) { $0 + flops($1) }
      }
    }
    return total
  }

  static func flops(_ call: ForwardTrace.Call) -> Int {
    let outputs = call.outputShape.reduce(1, *)
    switch call.layer {
    case let conv as Conv2d:
      return 2 * outputs * (conv.inChannels / conv.groups) * conv.kernelSize.height * conv.kernelSize.width
    case let deconv as ConvTranspose2d:
      let inputs = call.inputShape.reduce(1, *)
      return 2 * inputs * (deconv.outChannels / deconv.groups) * deconv.kernelSize.height * deconv.kernelSize.width
    case let linear as Linear:
      return 2 * outputs * linear.inFeatures
    default:
      return 0
    }
  }
}
