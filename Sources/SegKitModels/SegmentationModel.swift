import SegKitNN

/// Encoder, decoder, class head: any encoder with any decoder. Parameters are named
/// as torchvision names them (`backbone.*`, `classifier.*`, `aux_classifier.*`);
/// the class head's sit inside `classifier.*` (see `Decoder`).
public final class SegmentationModel: Module, SegmentationNetwork {
  public let backbone: any Encoder
  public let classifier: any Decoder
  /// Decoded features → logits; nil when the decoder ends in class scores itself.
  public let classHead: ClassHead?
  public let auxClassifier: (any Layer)?
  /// Which encoder feature the auxiliary head reads (torchvision: layer3, index 2).
  public let auxFeatureIndex: Int
  public var inputNormalization: InputNormalization = .imagenet

  public init(
    backbone: any Encoder, classifier: any Decoder, classHead: ClassHead? = nil, auxClassifier: (any Layer)? = nil,
    auxFeatureIndex: Int = 2
  ) {
    precondition(
      (classHead == nil) == (classifier.classHeadKey == nil),
      "\(type(of: classifier)) needs a class head exactly when it names a key for one")
    precondition(
      classHead.map { $0.inChannels == classifier.outputChannels } ?? true,
      "class head reads \(classHead?.inChannels ?? 0) channels, "
        + "\(type(of: classifier)) gives \(classifier.outputChannels)")
    self.backbone = backbone
    self.classifier = classifier
    self.classHead = classHead
    self.auxClassifier = auxClassifier
    self.auxFeatureIndex = auxFeatureIndex
    super.init()
    registerModule("backbone", backbone)
    registerModule("classifier", classifier)
    // Inside the decoder, so the head's keys stay what they were when decoders held it.
    if let classHead, let key = classifier.classHeadKey { classifier.registerModule(key, classHead.layer) }
    if let auxClassifier { registerModule("aux_classifier", auxClassifier) }
  }

  public var encoder: any Encoder { backbone }
  public var encoderKeyPrefix: String { "backbone." }
  public var classes: Int { classHead?.classes ?? classifier.outputChannels }
  public var outputNames: [String] { auxClassifier == nil ? ["out"] : ["out", "aux"] }

  /// The layout and element type inference computes in (see `optimizeForInference`).
  public private(set) var inferenceForm = InferenceForm()

  /// Prepares the model for fast inference: evaluation mode, batch norm folded
  /// into the convolutions, activations (and ResNet's residual additions) fused
  /// into them (oneDNN on the CPU), bilinear transposed convolutions run depthwise
  /// (`useDepthwiseDiagonals`), and (by default) channels-last weights and inputs,
  /// which oneDNN's CPU convolutions run faster. Parameters keep their values
  /// and names; `train()` undoes the folding.
  /// With `dtype` bfloat16, weights (folded ones included) and activations are
  /// bfloat16 (oneDNN's AVX-512 BF16 and AMX kernels) and outputs float32.
  public func optimizeForInference(channelsLast: Bool = true, dtype: DType = .float32) throws {
    inferenceForm = try InferenceForm.prepare(self, channelsLast: channelsLast, dtype: dtype)
  }

  public func forward(_ x: Tensor) throws -> SegmentationOutput {
    let x = try inferenceForm.input(x)
    let shape = x.shape
    guard shape.count == 4 else { throw ModelError("expected an (N, C, H, W) image batch, got shape \(shape)") }
    let size = Size2(shape[2], shape[3])
    let divisor = classifier.requiredDivisor
    let padded = Size2((size.height + divisor - 1) / divisor * divisor, (size.width + divisor - 1) / divisor * divisor)
    // Replicating the border rather than zeros adds no artificial edge to the image.
    let input = padded == size && !(OperationTrace.isRecording && divisor > 1)
      ? x : try x.pad([0, padded.width - size.width, 0, padded.height - size.height], mode: .replicate)
    let features = try backbone.features(input)
    let decoded = try classifier.forward(features: features, inputSize: padded)
    let logits = try classHead.map { try $0(decoded) } ?? decoded
    // Fitted: a head that upsamples by transposed convolution may overshoot by a row.
    let out = try inferenceForm.output(logits.fitted(to: padded).cropped(to: size))
    let aux = try auxClassifier.map {
      try inferenceForm.output($0.forward(features[auxFeatureIndex]).resized(to: padded).cropped(to: size))
    }
    return SegmentationOutput(out: out, aux: aux)
  }

  public func callAsFunction(_ x: Tensor) throws -> SegmentationOutput { try forward(x) }
}
