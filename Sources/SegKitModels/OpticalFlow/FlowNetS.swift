import SegKitNN

/// FlowNetS (Dosovitskiy et al., ICCV 2015), without batch norm, as NVIDIA's
/// flownet2-pytorch builds `FlowNet2S`, and in the 3/8-wide form DVSNet uses:
///
///     encoder     conv1 7×7/2, conv2 5×5/2, conv3 5×5/2, conv3_1, conv4 /2, conv4_1,
///                 conv5 /2, conv5_1, conv6 /2, conv6_1 (3×3 unless said; LeakyReLU 0.1)
///     refinement  from conv6_1 down to 1/4 of the input: at each level a flow is
///                 predicted (3×3 conv to 2 channels) and upsampled (4×4/2 transposed,
///                 no bias), the features are upsampled (`deconv`, 4×4/2 + LeakyReLU),
///                 and the next level reads [encoder skip, upsampled features, upsampled flow]
///     output      `predict_flow2` × 20, bilinearly upsampled ×4: pixels at the input size
///
/// DVSNet adds `predict_scale`: a 3×3 convolution on the finest level's input to one
/// scale per class (weights 0, bias 1: the identity at the start), which multiplies the
/// warped key-frame logits (`WarpPath`).
///
/// State-dict keys are flownet2-pytorch's (`conv1.0.weight`, `deconv5.0.weight`,
/// `predict_flow6.weight`, `upsampled_flow6_to_5.weight`, …), so its FlowNet2-S
/// checkpoint (`state_dict` of the `.pth.tar`) loads unmodified.
public final class FlowNetS: Module {
  /// Channel widths: the encoder's ten convolutions and the four feature upsamplers.
  public struct Widths: Sendable, Equatable {
    public let encoder: [Int]
    public let decoder: [Int]

    /// flownet2-pytorch's FlowNet2-S.
    public static let full = Widths(encoder: [64, 128, 256, 256, 512, 512, 512, 512, 1024, 1024], decoder: [512, 256, 128, 64])
    /// DVSNet's thin FlowNetS: 3/8 of every width.
    public static let thin = Widths(encoder: [24, 48, 96, 96, 192, 192, 192, 192, 384, 384], decoder: [192, 96, 48, 24])
  }

  /// The factor between `predict_flow2` and pixels (flownet2-pytorch's `div_flow`).
  public static let flowScale = 20.0
  /// Input sides must be multiples of this (six stride-2 levels).
  public static let sizeMultiple = 64

  public let widths: Widths
  let encoder: [Sequential]
  let deconvolutions: [Sequential]
  let predictions: [Conv2d]
  let flowUpsamplers: [ConvTranspose2d]
  /// DVSNet's per-class scale field head, when built with `scaleClasses`.
  let scaleHead: Conv2d?

  /// The classes of the scale field, or nil without one.
  public var scaleClasses: Int? { scaleHead?.weight.shape[0] }

  public init(widths: Widths = .full, scaleClasses: Int? = nil) throws {
    guard widths.encoder.count == 10, widths.decoder.count == 4 else {
      throw ModelError("FlowNetS takes 10 encoder and 4 decoder widths, got \(widths.encoder.count) and \(widths.decoder.count)")
    }
    self.widths = widths
    let e = widths.encoder, d = widths.decoder
    func convolution(_ input: Int, _ output: Int, kernel: Int = 3, stride: Int = 1) throws -> Sequential {
      Sequential(try Conv2d(input, output, kernelSize: Size2(kernel, kernel), stride: Size2(stride, stride),
                            padding: Size2((kernel - 1) / 2, (kernel - 1) / 2)), LeakyReLU(negativeSlope: 0.1))
    }
    encoder = [
      try convolution(6, e[0], kernel: 7, stride: 2), try convolution(e[0], e[1], kernel: 5, stride: 2),
      try convolution(e[1], e[2], kernel: 5, stride: 2), try convolution(e[2], e[3]),
      try convolution(e[3], e[4], stride: 2), try convolution(e[4], e[5]),
      try convolution(e[5], e[6], stride: 2), try convolution(e[6], e[7]),
      try convolution(e[7], e[8], stride: 2), try convolution(e[8], e[9]),
    ]
    // Level inputs, coarse to fine: conv6_1, then [skip, upsampled features, upsampled flow].
    let levelInputs = [e[9], e[7] + d[0] + 2, e[5] + d[1] + 2, e[3] + d[2] + 2, e[1] + d[3] + 2]
    deconvolutions = try (0..<4).map { level in
      Sequential(try ConvTranspose2d(levelInputs[level], d[level], kernelSize: 4, stride: 2, padding: 1),
                 LeakyReLU(negativeSlope: 0.1))
    }
    predictions = try levelInputs.map { try Conv2d($0, 2, kernelSize: 3, padding: 1) }
    flowUpsamplers = try (0..<4).map { _ in try ConvTranspose2d(2, 2, kernelSize: 4, stride: 2, padding: 1, bias: false) }
    if let scaleClasses {
      guard (1...256).contains(scaleClasses) else { throw ModelError("FlowNetS: a scale field for \(scaleClasses) classes") }
      scaleHead = try Conv2d(levelInputs[4], scaleClasses, kernelSize: 3, padding: 1)
    } else {
      scaleHead = nil
    }
    super.init()
    let encoderNames = ["conv1", "conv2", "conv3", "conv3_1", "conv4", "conv4_1", "conv5", "conv5_1", "conv6", "conv6_1"]
    for (name, layer) in zip(encoderNames, encoder) { registerModule(name, layer) }
    for (level, layer) in deconvolutions.enumerated() { registerModule("deconv\(5 - level)", layer) }
    for (level, layer) in predictions.enumerated() { registerModule("predict_flow\(6 - level)", layer) }
    for (level, layer) in flowUpsamplers.enumerated() { registerModule("upsampled_flow\(6 - level)_to_\(5 - level)", layer) }
    if let scaleHead {
      registerModule("predict_scale", scaleHead)
      try Torch.withNoGrad {
        try scaleHead.weight.zero_()
        try scaleHead.bias?.fill_(1)
      }
    }
  }

  /// What the network computes from one input.
  public struct Output {
    /// `predict_flow2` [N, 2, H/4, W/4], in units of 20 px.
    public var flow2: Tensor
    /// `predict_flow3`…`6`, finest first (for multi-scale training).
    public var coarser: [Tensor]
    /// conv6_1 [N, C, H/64, W/64], which DVSNet's decision network reads.
    public var features: Tensor
    /// The per-class scale field [N, K, H/4, W/4] (with `scaleClasses`).
    public var scale: Tensor?
    /// conv4_1 and conv5_1, finer features for a decision network on small inputs.
    public var conv4_1: Tensor
    public var conv5_1: Tensor

    public func features(at layer: FeatureLayer) -> Tensor {
      switch layer {
      case .conv4_1: return conv4_1
      case .conv5_1: return conv5_1
      case .conv6_1: return features
      }
    }
  }

  /// The encoder layers a decision network can read. DVSNet reads conv6_1, which is 4×8
  /// on its 256×512 flow inputs; on smaller inputs conv6_1 is a cell or two, so a
  /// finer layer keeps the spatial layout the decision network's grid assumes.
  public enum FeatureLayer: String, Sendable, CaseIterable {
    case conv4_1, conv5_1, conv6_1

    public var stride: Int {
      switch self {
      case .conv4_1: return 16
      case .conv5_1: return 32
      case .conv6_1: return 64
      }
    }

    /// The deepest layer whose native size on an input of `size` (before rounding up
    /// to multiples of 64) covers `grid`; conv4_1 when none does.
    public static func deepest(covering grid: Size2, input size: Size2) -> FeatureLayer {
      let rounded = FlowNetS.inputSize(height: size.height, width: size.width)
      return [.conv6_1, .conv5_1].first {
        rounded.height / $0.stride >= grid.height && rounded.width / $0.stride >= grid.width
      } ?? .conv4_1
    }
  }

  /// Channels of a feature layer.
  public func channels(of layer: FeatureLayer) -> Int {
    switch layer {
    case .conv4_1: return widths.encoder[5]
    case .conv5_1: return widths.encoder[7]
    case .conv6_1: return widths.encoder[9]
    }
  }

  /// The network on its normalised input [N, 6, H, W] (H, W multiples of 64).
  public func forward(_ x: Tensor) throws -> Output {
    guard x.rank == 4, x.shape[1] == 6, x.shape[2] % Self.sizeMultiple == 0, x.shape[3] % Self.sizeMultiple == 0 else {
      throw ModelError("FlowNetS takes [N, 6, H, W] with H and W multiples of \(Self.sizeMultiple); got \(x.shape)")
    }
    var outputs: [Tensor] = []
    var current = x
    for layer in encoder {
      current = try layer(current)
      outputs.append(current)
    }
    // The encoder outputs each level reads as its skip: conv5_1, conv4_1, conv3_1, conv2.
    let skips = [outputs[7], outputs[5], outputs[3], outputs[1]]
    var coarser: [Tensor] = []
    var level = outputs[9]
    for index in 0..<4 {
      let flow = try predictions[index](level)
      coarser.insert(flow, at: 0)
      level = try Tensor.cat([skips[index], try deconvolutions[index](level), try flowUpsamplers[index](flow)], dim: 1)
    }
    return Output(flow2: try predictions[4](level), coarser: coarser, features: outputs[9], scale: try scaleHead.map { try $0(level) },
                  conv4_1: outputs[5], conv5_1: outputs[7])
  }

  /// FlowNet2-S's input from two batches of RGB frames [N, 3, H, W] with values in
  /// 0…255: both minus their per-image, per-channel mean over the two frames, over
  /// 255, stacked first frame first.
  public static func input(first: Tensor, second: Tensor) throws -> Tensor {
    guard first.rank == 4, first.shape[1] == 3, first.shape == second.shape else {
      throw ModelError("FlowNetS takes two [N, 3, H, W] frames of one size; got \(first.shape) and \(second.shape)")
    }
    let pair = try Tensor.cat([first, second], dim: 3)
    let mean = try pair.mean(dims: [2, 3], keepDim: true)
    return try Tensor.cat([(first - mean) / 255, (second - mean) / 255], dim: 1)
  }

  /// The size frames of `height` × `width` are resized to: the next multiples of 64.
  public static func inputSize(height: Int, width: Int) -> Size2 {
    func rounded(_ side: Int) -> Int { max(sizeMultiple, (side + sizeMultiple - 1) / sizeMultiple * sizeMultiple) }
    return Size2(rounded(height), rounded(width))
  }

  /// The network's output for two RGB frames (0…255, [N, 3, H, W], any size), scaled by
  /// `scale` (DVSNet runs its flow at half the segmentation's resolution) and resized to
  /// `inputSize` first: `flow2` then holds the flow over the resized frames.
  public func output(from first: Tensor, to second: Tensor, scale: Double = 1) throws -> Output {
    guard scale > 0, scale <= 16 else { throw ModelError("FlowNetS: an input scale of \(scale); expected (0, 16]") }
    let size = Self.inputSize(height: Int((Double(first.shape[2]) * scale).rounded()), width: Int((Double(first.shape[3]) * scale).rounded()))
    let resized = size == Size2(first.shape[2], first.shape[3])
      ? (first, second) : (try first.interpolate(size: size), try second.interpolate(size: size))
    return try forward(try Self.input(first: resized.0, second: resized.1))
  }

  /// The flow from `first` to `second` (RGB, 0…255, [N, 3, H, W], any size) in pixels,
  /// [N, 2, H, W], channel 0 horizontal: first(x) ≈ second(x + flow(x)). Frames whose
  /// sides are not multiples of 64 are resized to the next ones and the flow is scaled back.
  public func flow(from first: Tensor, to second: Tensor) throws -> Tensor {
    try flowAndOutput(from: first, to: second).flow
  }

  /// `flow(from:to:)` with the network's output it came from (features, scale field).
  public func flowAndOutput(from first: Tensor, to second: Tensor) throws -> (flow: Tensor, output: Output) {
    let (height, width) = (first.shape[2], first.shape[3])
    let size = Self.inputSize(height: height, width: width)
    let output = try output(from: first, to: second)
    let flow = try (output.flow2 * Self.flowScale).interpolate(size: size)
    guard size != Size2(height, width) else { return (flow, output) }
    let scale = try Tensor([Float(width) / Float(size.width), Float(height) / Float(size.height)], shape: [1, 2, 1, 1]).to(flow.device)
    return (try flow.interpolate(size: Size2(height, width)) * scale, output)
  }
}
