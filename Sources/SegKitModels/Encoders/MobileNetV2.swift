import SegKitNN

/// torchvision's MobileNetV2 (width 1.0) without its classifier, as a feature extractor.
///
/// The blocks are this module's children "0" … "18", as torchvision's `features.N`
/// (the classification checkpoint's `features.` prefix is dropped when loading):
/// 0 stem (stride 2), 1 (16 ch), 2–3 (24 ch, stride 4), 4–6 (32 ch, stride 8),
/// 7–13 (64 then 96 ch, stride 16), 14–17 (160 then 320 ch, stride 32), 18 the 1×1
/// convolution to 1280 channels. The features are by default the outputs of blocks
/// 3, 6, 13 and 18 (24, 32, 96, 1280 channels).
///
/// torchvision has no dilated MobileNetV2; output stride 16 or 8 follows DeepLab's
/// MobileNetV2: a stride-2 block past the output stride gets stride 1 and keeps the
/// previous dilation, the blocks after it use the doubled one (depthwise padding = dilation).
public final class MobileNetV2: Module, BlockListEncoder {
  public let featureChannels: [Int]
  public let outputStride: Int
  /// The blocks whose outputs `features(_:)` returns.
  public let featureIndices: [Int]
  public let blocks: [any Layer]

  /// - Parameters:
  ///   - outputStride: 32, 16 or 8.
  ///   - inputChannels: 3 for RGB; more for extra inputs such as a previous mask.
  ///   - featureIndices: the blocks to return, one at each stride 4, 8, 16, 32
  ///     (default: the last block at each).
  public init(outputStride: Int = 32, inputChannels: Int = 3, featureIndices: [Int]? = nil) throws {
    // (expansion t, output channels c, blocks n, stride s), as in the paper.
    let stages = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    var strides = [2]
    for (_, _, n, s) in stages { strides += [s] + Array(repeating: 1, count: n - 1) }
    strides.append(1)
    let schedule = try dilatedSchedule(
      strides: strides, outputStride: outputStride, firstBlockKeepsDilation: true, network: "MobileNetV2")
    self.featureIndices = try featureBlockIndices(featureIndices, strides: strides, network: "MobileNetV2")
    self.outputStride = outputStride

    let norm = { (channels: Int) in try BatchNorm2d(channels) }
    var blocks: [any Layer] = [
      try convNormActivation(inputChannels, 32, kernelSize: 3, stride: 2, norm: norm, activation: ReLU6())
    ]
    var channels = [32]
    var input = 32
    for (t, output, n, _) in stages {
      for _ in 0..<n {
        let (stride, dilation) = schedule[blocks.count]
        let hidden = input * t
        var layers: [any Layer] = []
        if t != 1 {
          layers.append(try convNormActivation(input, hidden, kernelSize: 1, norm: norm, activation: ReLU6()))
        }
        layers += [
          try convNormActivation(
            hidden, hidden, kernelSize: 3, stride: stride, dilation: dilation, groups: hidden, norm: norm,
            activation: ReLU6()),
          try Conv2d(hidden, output, kernelSize: 1, bias: false), try BatchNorm2d(output),
        ]
        // The residual depends on the nominal stride, as in torchvision.
        let residual = strides[blocks.count] == 1 && input == output
        blocks.append(InvertedResidual(Sequential(layers), name: "conv", residual: residual))
        channels.append(output)
        input = output
      }
    }
    blocks.append(try convNormActivation(input, 1280, kernelSize: 1, norm: norm, activation: ReLU6()))
    channels.append(1280)
    self.blocks = blocks
    featureChannels = self.featureIndices.map { channels[$0] }
    super.init()
    for (index, block) in blocks.enumerated() { registerModule(String(index), block) }
  }
}

extension MobileNetV2: EncoderFamily {
  public static let names = ["mobilenet_v2"]

  public static func make(_ name: String, outputStride: Int, inputChannels: Int) throws -> (any Encoder)? {
    guard names.contains(name) else { return nil }
    return try MobileNetV2(outputStride: outputStride, inputChannels: inputChannels)
  }
}
