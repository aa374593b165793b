import SegKitNN

/// Turns encoder features into a decoded feature map of `outputChannels` channels
/// (at any stride; the model upsamples), which a `ClassHead` turns into logits.
///
/// The class head is a part of its own, but its parameters keep the key they have
/// always had inside the decoder (U-Net's `classifier.logits.*`, LinkNet's
/// `classifier.final_deconv3.*`), so published checkpoints load unmodified: the
/// model registers the head in the decoder under `classHeadKey`.
///
/// Some decoders end in class scores themselves, holding their `ClassHead`s where
/// their layout puts them; the model adds none (`classHeadKey` nil, `outputChannels`
/// = the classes): FCN, which fuses in class space, so its heads are the per-level
/// scores (`score_fr`, `score_pool4`, `score_pool3`); and torchvision's heads, which
/// keep their nn.Sequential layout: FCNHead decodes in `0`–`3` (3×3 conv, BN, ReLU,
/// dropout) and its class head is `4`, DeepLabHead likewise (`0`–`3`: ASPP, 3×3 conv,
/// BN, ReLU; head `4`), LRASPPHead has two heads (`low_classifier`,
/// `high_classifier`) whose sum is the logits.
public protocol Decoder: Module {
  /// Channels of the map `forward(features:inputSize:)` returns.
  var outputChannels: Int { get }
  func forward(features: [Tensor], inputSize: Size2) throws -> Tensor
  /// The model pads its input (bottom and right) to a multiple of this and crops
  /// the logits back: decoders that double the resolution stage by stage up to the
  /// input need every feature to be exactly half the next. 1: any size.
  var requiredDivisor: Int { get }
  /// The child name under which the model registers the class head; nil for a
  /// decoder that ends in class scores itself.
  var classHeadKey: String? { get }
}

extension Decoder {
  public var requiredDivisor: Int { 1 }
}

/// The last layer of a segmentation network: decoded features to class logits.
/// Usually a 1×1 convolution; LinkNet's is a 2×2 transposed convolution that also
/// doubles the resolution. Not a module of its own: its layer is registered by the
/// module that contains it, under that module's key for it (see `Decoder`).
public struct ClassHead {
  public let layer: any Layer
  public let inChannels: Int
  public let classes: Int

  /// A 1×1 convolution (with bias) from `inChannels` to `classes`.
  public init(inChannels: Int, classes: Int) throws {
    self.init(layer: try Conv2d(inChannels, classes, kernelSize: 1), inChannels: inChannels, classes: classes)
  }

  /// A 2×2 transposed convolution with stride 2 (with bias): classes at twice the resolution.
  public static func upsampling(inChannels: Int, classes: Int) throws -> ClassHead {
    ClassHead(
      layer: try ConvTranspose2d(inChannels, classes, kernelSize: 2, stride: 2), inChannels: inChannels,
      classes: classes)
  }

  init(layer: any Layer, inChannels: Int, classes: Int) {
    self.layer = layer
    self.inChannels = inChannels
    self.classes = classes
  }

  public func callAsFunction(_ x: Tensor) throws -> Tensor { try layer.forward(x) }
}

/// The logits of a segmentation model at the input's resolution: `out` from the
/// main head, and named extras: `aux` from an auxiliary head for models trained
/// with one, and whatever else a network adds (e.g. side outputs).
public struct SegmentationOutput {
  public let out: Tensor
  public let extras: [String: Tensor]

  /// The auxiliary head's logits, if the model has one.
  public var aux: Tensor? { extras["aux"] }

  public init(out: Tensor, extras: [String: Tensor] = [:]) {
    self.out = out
    self.extras = extras
  }

  public init(out: Tensor, aux: Tensor?) {
    self.init(out: out, extras: aux.map { ["aux": $0] } ?? [:])
  }

  /// The logits as a state dict, `out` then each of `names` after it that the output holds.
  public func stateDict(names: [String]) throws -> StateDict {
    var state = try StateDict([("out", out.contiguous())])
    for name in names.dropFirst() {
      if let extra = extras[name] { state.set(name, try extra.contiguous()) }
    }
    return state
  }
}

/// What training, evaluation and prediction need of a segmentation network.
public protocol SegmentationNetwork: Module {
  /// Number of output classes (channels of `out`).
  var classes: Int { get }
  /// The outputs `forward` gives: "out" first, then the names of its extras.
  var outputNames: [String] { get }
  /// How inputs must be normalised (default: ImageNet's statistics).
  var inputNormalization: InputNormalization { get }
  /// The encoder, e.g. to load an ImageNet classification checkpoint into it.
  var encoder: any Encoder { get }
  /// Where the encoder's keys sit in this network's state dict ("backbone.").
  var encoderKeyPrefix: String { get }
  func forward(_ x: Tensor) throws -> SegmentationOutput
  func callAsFunction(_ x: Tensor) throws -> SegmentationOutput
  /// Evaluation mode and inference-only speed-ups (see `SegmentationModel`), computing
  /// in `dtype` (float32, or bfloat16: inputs converted on the way in, outputs
  /// returned in float32).
  func optimizeForInference(channelsLast: Bool, dtype: DType) throws
}

/// The arithmetic inference runs in. float32 is exact (within rounding of the plain
/// path); the others trade accuracy for speed and are only used when asked for.
public enum InferencePrecision: String, CaseIterable, Sendable {
  case fp32, bf16, int8
}

/// The layout and, for a reduced precision, the element type a network optimised
/// for inference computes in.
public struct InferenceForm: Sendable {
  public var memoryFormat: Tensor.MemoryFormat = .contiguous
  /// bfloat16 when computing in it; nil computes in the input's own type.
  public var reducedDType: DType?

  public init(memoryFormat: Tensor.MemoryFormat = .contiguous, computing dtype: DType = .float32) {
    self.memoryFormat = memoryFormat
    reducedDType = dtype == .float32 ? nil : dtype
  }

  /// An input as the network computes on it.
  public func input(_ x: Tensor) throws -> Tensor {
    let laidOut = memoryFormat == .contiguous ? x : try x.contiguous(memoryFormat)
    guard let reducedDType, laidOut.dtype != reducedDType else { return laidOut }
    return try laidOut.to(reducedDType)
  }

  /// An output as callers take it: float32 after a reduced precision.
  public func output(_ y: Tensor) throws -> Tensor {
    reducedDType != nil && y.dtype == reducedDType ? try y.to(.float32) : y
  }
}

extension InferenceForm {
  /// The inference recipe every image network follows, once: evaluation mode,
  /// channels-last weights (oneDNN's faster CPU layout) when asked, batch norm folded
  /// into the convolutions, activations fused into them, bilinear transposed
  /// convolutions run depthwise, then the weights converted to `dtype` (after folding,
  /// which is done in float32). Returns the form the network then computes in.
  public static func prepare(_ network: Module, channelsLast: Bool, dtype: DType) throws -> InferenceForm {
    network.eval()
    if channelsLast { try network.to(memoryFormat: .channelsLast) }
    try network.foldBatchNorm()
    try network.fuseActivations()
    try network.useDepthwiseDiagonals()
    try network.convertForInference(to: dtype)
    return InferenceForm(memoryFormat: channelsLast ? .channelsLast : .contiguous, computing: dtype)
  }
}

extension SegmentationNetwork {
  public var inputNormalization: InputNormalization { .imagenet }
  public func callAsFunction(_ x: Tensor) throws -> SegmentationOutput { try forward(x) }
  public func optimizeForInference() throws { try optimizeForInference(channelsLast: true, dtype: .float32) }
  public func optimizeForInference(channelsLast: Bool) throws { try optimizeForInference(channelsLast: channelsLast, dtype: .float32) }

  /// The fast inference form at `precision`: float32, bfloat16 (weights and
  /// activations), or int8 convolutions calibrated on `calibration` (normalised input
  /// batches, a few images of the data to come; see `Module.quantizeConvolutions`).
  /// With `measuringKernels` (fp32 or int8 on the CPU), each 3×3 convolution keeps the
  /// faster of oneDNN's kernel and NNPACK's float32 Winograd kernel on its input
  /// (`measureConvolutionKernels`).
  public func optimizeForInference(precision: InferencePrecision, calibration: [Tensor] = [], measuringKernels: Bool = false) throws {
    if measuringKernels && precision == .bf16 {
      throw ModelError("measured kernels choose between oneDNN's float32 or int8 kernels and Winograd's: they apply to fp32 and int8, not bf16")
    }
    if precision == .bf16 { try Torch.requireBFloat16Convolutions(on: parameters().first?.device ?? .cpu) }
    try optimizeForInference(channelsLast: true, dtype: precision == .bf16 ? .bfloat16 : .float32)
    if measuringKernels { try measureConvolutionKernels() }
    guard precision == .int8 else { return }
    guard !calibration.isEmpty else { throw ModelError("int8 inference needs calibration inputs (a few images of the data)") }
    try quantizeConvolutions { for batch in calibration { _ = try forward(batch) } }
  }
}
