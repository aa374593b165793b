import SegKitNN

/// OSVOS (Caelles et al., CVPR 2017), as its PyTorch release builds it, with that
/// release's state-dict keys so its checkpoints load unmodified:
///
///     stages.0 … stages.4     VGG16 conv1_1 … conv5_3 (ReLU), a 2×2 ceil-mode max pool
///                             opening stages 1–4, no pool5
///     side_prep.0 … 3         on stages 1–4: a linear 3×3 convolution to 16 channels
///     score_dsn.0 … 3         a 1×1 side score from those 16 channels
///     upscale.0 … 3           16→16 transposed convolutions, kernel 2^(i+1), stride 2^i,
///     upscale_.0 … 3          and 1→1 for the score; bilinear, frozen
///     fuse                    a 1×1 convolution over the four upsampled 16-channel maps
///
/// Every upsampled map is centre-cropped to the input (an odd excess loses its extra
/// row or column at the bottom/right). Outputs, all logits at the input's size:
/// `out` (the fuse) and `side2` … `side5` (the side scores of conv2_2 … conv5_3).
/// Inputs are BGR 0–255 minus Caffe's means (`InputNormalization.caffeBGR`).
///
/// The same figure over any other encoder (`osvos_resnet18`, `osvos_mobilenet_v2`, …):
/// the encoder under `backbone.` in place of the stages, its four feature levels as
/// the side levels (each upsampled by its stride s with a kernel of 2s, which the
/// centre crop aligns with the input), ImageNet's input normalisation.
public final class OSVOS: Module, SegmentationNetwork {
  public let classes = 1
  public let outputNames = ["out", "side2", "side3", "side4", "side5"]
  public let inputNormalization: InputNormalization
  public let encoderKeyPrefix: String
  public let encoder: any Encoder
  let sidePrep: [Conv2d]
  let scoreDSN: [Conv2d]
  /// Upsampling of the 16-channel side features and of the side scores.
  let upscale: [ConvTranspose2d]
  let upscaleScore: [ConvTranspose2d]
  let fuse: Conv2d

  /// OSVOS itself: the VGG16 stages under `stages.`, Caffe's BGR input.
  public convenience init(inputChannels: Int = 3) throws {
    let stages = try OSVOSStages(inputChannels: inputChannels)
    try self.init(encoder: stages, encoderKey: "stages", inputNormalization: stages.imageNormalization)
  }

  /// OSVOS over the zoo's encoder `encoder`: `vgg16` gives the release's network (its
  /// stages, Caffe's BGR input), any other encoder OSVOS's figure over it.
  public convenience init(encoder: String, inputChannels: Int = 3) throws {
    if encoder == "vgg16" {
      try self.init(inputChannels: inputChannels)
    } else {
      try self.init(encoder: try EncoderRegistry.make(encoder, inputChannels: inputChannels), encoderKey: "backbone",
                    inputNormalization: .imagenet)
    }
  }

  /// Side and fuse convolutions drawn from N(0, 0.001) with zero biases, as OSVOS
  /// initialises them; the VGG stages likewise until a VGG16 checkpoint is loaded
  /// (`encoder.loadClassificationCheckpoint` takes torchvision's vgg16, its conv1_1
  /// refitted to Caffe's input). Another
  /// encoder keeps its own initialisation.
  public init(encoder: any Encoder, encoderKey: String, inputNormalization: InputNormalization) throws {
    guard encoder.featureChannels.count == 4, encoder.featureStrides.count == 4 else {
      throw ModelError("OSVOS takes an encoder of four feature levels")
    }
    self.encoder = encoder
    encoderKeyPrefix = encoderKey + "."
    self.inputNormalization = inputNormalization
    var sidePrep: [Conv2d] = [], scoreDSN: [Conv2d] = []
    var upscale: [ConvTranspose2d] = [], upscaleScore: [ConvTranspose2d] = []
    for (channels, stride) in zip(encoder.featureChannels, encoder.featureStrides) {
      sidePrep.append(try Conv2d(channels, 16, kernelSize: 3, padding: 1))
      scoreDSN.append(try Conv2d(16, 1, kernelSize: 1))
      upscale.append(try ConvTranspose2d(16, 16, kernelSize: Size2(2 * stride), stride: Size2(stride), bias: false))
      upscaleScore.append(try ConvTranspose2d(1, 1, kernelSize: Size2(2 * stride), stride: Size2(stride), bias: false))
    }
    fuse = try Conv2d(64, 1, kernelSize: 1)
    (self.sidePrep, self.scoreDSN, self.upscale, self.upscaleScore) = (sidePrep, scoreDSN, upscale, upscaleScore)
    super.init()
    // OSVOS-PyTorch's registration order, so the state dict lists keys as its does.
    registerModule("upscale", ModuleList(upscale))
    registerModule("upscale_", ModuleList(upscaleScore))
    registerModule(encoderKey, encoder)
    registerModule("side_prep", ModuleList(sidePrep))
    registerModule("score_dsn", ModuleList(scoreDSN))
    registerModule("fuse", fuse)

    let initialised: [Module] = (encoder is OSVOSStages ? [encoder] : []) + sidePrep + scoreDSN + [fuse]
    for case let conv as Conv2d in initialised.flatMap({ $0.modules() }) {
      try Init.normal_(conv.weight, std: 0.001)
      if let bias = conv.bias { try Init.zeros_(bias) }
    }
    for deconvolution in upscale + upscaleScore {
      try Init.bilinearUpsampling_(deconvolution.weight)
      _ = try deconvolution.weight.requiresGrad(false)
    }
  }

  public func forward(_ x: Tensor) throws -> SegmentationOutput { try forwardWithFeatures(x).output }

  /// The outputs and the encoder's four feature levels they came from (MaskRNN's
  /// localiser reads the deepest).
  public func forwardWithFeatures(_ x: Tensor) throws -> (output: SegmentationOutput, features: [Tensor]) {
    let x = try inferenceForm.input(x)
    let shape = x.shape
    guard shape.count == 4 else { throw ModelError("OSVOS expects an (N, C, H, W) image batch, got shape \(shape)") }
    let size = Size2(shape[2], shape[3])
    let levels = try encoder.features(x)
    var sides: [Tensor] = []
    var scores: [String: Tensor] = [:]
    for (index, level) in levels.enumerated() {
      let prepared = try sidePrep[index](level)
      sides.append(try Self.centreCropped(upscale[index](prepared), to: size))
      scores["side\(index + 2)"] = try inferenceForm.output(
        Self.centreCropped(upscaleScore[index](scoreDSN[index](prepared)), to: size))
    }
    let out = try inferenceForm.output(fuse(Tensor.cat(sides, dim: 1)))
    return (SegmentationOutput(out: out, extras: scores), try levels.map(inferenceForm.output))
  }

  /// The window of `size` in the middle of `x`; an odd excess is cut at the bottom/right.
  static func centreCropped(_ x: Tensor, to size: Size2) throws -> Tensor {
    let shape = x.shape
    guard shape[2] >= size.height, shape[3] >= size.width else {
      throw ModelError("OSVOS: an upsampled map of \(shape[2])×\(shape[3]) is smaller than the input \(size.height)×\(size.width)")
    }
    return try x.narrow(dim: 2, start: (shape[2] - size.height) / 2, length: size.height)
      .narrow(dim: 3, start: (shape[3] - size.width) / 2, length: size.width)
  }

  /// OSVOS's training recipe (all its releases): learning-rate multipliers ×1 for
  /// the weights of the stages (the encoder) and side preparation, ×2 for their biases, ×0.1 and
  /// ×0.2 for the side scores, ×0.01 and ×0.02 for the fuse; weight decay on weights
  /// only (the optimizer's); the upsampling frozen (not in any group).
  public func referenceParameterGroups() -> [ParameterGroup] {
    let rules: [(prefix: String, weight: Double)] = [(encoderKeyPrefix, 1), ("side_prep.", 1), ("score_dsn.", 0.1), ("fuse.", 0.01)]
    var groups: [ParameterGroup] = []
    for rule in rules {
      let named = namedParameters().filter { $0.0.hasPrefix(rule.prefix) && $0.1.requiresGrad }
      let weights = named.filter { $0.0.hasSuffix(".weight") }.map(\.1), biases = named.filter { $0.0.hasSuffix(".bias") }.map(\.1)
      groups.append(ParameterGroup(parameters: weights, learningRateMultiplier: rule.weight))
      groups.append(ParameterGroup(parameters: biases, learningRateMultiplier: 2 * rule.weight, weightDecay: 0))
    }
    return groups
  }

  /// The layout and element type inference computes in (see `optimizeForInference`).
  public private(set) var inferenceForm = InferenceForm()

  /// Evaluation mode, with the encoder's batch norms (if any) folded into their
  /// convolutions, activations fused into them, the bilinear upsampling run depthwise
  /// (its weights map each channel onto itself only) and, by default, channels-last
  /// weights and inputs (oneDNN's faster layout; also for max pooling), computing in
  /// `dtype` (outputs and features in float32).
  public func optimizeForInference(channelsLast: Bool, dtype: DType) throws {
    inferenceForm = try InferenceForm.prepare(self, channelsLast: channelsLast, dtype: dtype)
  }
}

/// OSVOS's five VGG16 stages under its keys (`N.M.*` inside `stages`): stage 0 is
/// conv1_1–conv1_2, each later stage opens with a 2×2 max pool rounding up (ceil
/// mode) and ends before the next pool. Its four features are the outputs of stages
/// 1–4 (conv2_2, conv3_3, conv4_3, conv5_3) at strides 2, 4, 8 and 16.
public final class OSVOSStages: Module, Encoder {
  public let featureChannels = [128, 256, 512, 512]
  public let featureStrides = [2, 4, 8, 16]
  public let outputStride = 16
  public let inputConvolutionKey = "0.0.weight"
  /// Caffe's BGR input, as OSVOS's Caffe VGG was trained on: torchvision's vgg16 has its
  /// conv1_1 refitted to it on loading, so its features stay torchvision's.
  public let imageNormalization = InputNormalization.caffeBGR
  let stages: [Sequential]

  static let widths = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]

  public init(inputChannels: Int = 3) throws {
    var stages: [Sequential] = []
    var inChannels = inputChannels
    for (index, widths) in Self.widths.enumerated() {
      var layers: [any Layer] = index == 0 ? [] : [MaxPool2d(kernelSize: 2, stride: 2, ceilMode: true)]
      for width in widths {
        layers += [try Conv2d(inChannels, width, kernelSize: 3, padding: 1), ReLU()]
        inChannels = width
      }
      stages.append(Sequential(layers))
    }
    self.stages = stages
    super.init()
    for (index, stage) in stages.enumerated() { registerModule(String(index), stage) }
  }

  public var featureLevels: [FeatureLevel] {
    zip(featureChannels, featureStrides).enumerated().map { FeatureLevel("conv\($0 + 2)_\(Self.widths[$0 + 1].count)", channels: $1.0, stride: $1.1) }
  }

  public func features(_ x: Tensor) throws -> [Tensor] {
    if let chain = int8Chain(for: x) {
      // int8 activations from conv1_1 on, dequantised at the ends of stages 1–4 only.
      let ends = Set(stages.indices.dropFirst().map { stages[...$0].map(\.layers.count).reduce(0, +) - 1 })
      var features: [Tensor] = []
      try chain.run(x) { index, h in
        if ends.contains(index) { features.append(try h.dequantized()) }
        return true
      }
      return features
    }
    var h = try stages[0](x)
    var features: [Tensor] = []
    for stage in stages.dropFirst() {
      h = try stage(h)
      features.append(h)
    }
    return features
  }

  private func int8Chain(for x: Tensor) -> Int8Chain? { Int8Chain(stages.flatMap(\.layers), for: x) }

  /// Whether `features(x)` keeps int8 activations between its layers.
  public func keepsInt8Activations(for x: Tensor) -> Bool { int8Chain(for: x) != nil }

  /// torchvision's vgg16 `features.K.*` (convolutions at K = 0, 2, 5, 7, 10, …) to
  /// the same convolution here; its classifier is dropped.
  public func encoderKey(forClassificationKey key: String) -> String? {
    let parts = key.split(separator: ".")
    guard parts.count == 3, parts[0] == "features", let index = Int(parts[1]) else { return nil }
    var torchvisionIndex = 0
    for (stage, widths) in Self.widths.enumerated() {
      var local = stage == 0 ? 0 : 1  // the pool opening stages 1–4
      for _ in widths {
        if torchvisionIndex == index { return "\(stage).\(local).\(parts[2])" }
        torchvisionIndex += 2
        local += 2
      }
      torchvisionIndex += 1  // torchvision's pool closing the stage
    }
    return nil
  }
}

extension InputNormalization {
  /// Caffe's VGG input, which OSVOS keeps: BGR, 0–255, minus the per-channel means.
  public static let caffeBGR = InputNormalization(
    mean: [104.00699, 116.66877, 122.67892], std: [1, 1, 1], pixelDivisor: 1, channelOrder: .bgr)
}
