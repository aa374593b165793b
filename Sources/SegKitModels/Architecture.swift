import SegKitNN

/// A feature extractor: the image in, features at strides 4, 8, 16 and 32 out.
/// With dilation replacing stride, the deeper features keep a finer stride
/// (output stride 16 or 8) but are still listed as the 4th, 8th, ... entries.
public protocol Encoder: Module {
  /// Channel counts of the four feature maps.
  var featureChannels: [Int] { get }
  /// The encoder's output stride: 32, 16 or 8.
  var outputStride: Int { get }
  func features(_ x: Tensor) throws -> [Tensor]
  /// The name of the first convolution's weight, widened when the encoder takes
  /// more input channels than the pretrained RGB checkpoint has.
  var inputConvolutionKey: String { get }
  /// Maps a key of the ImageNet classification checkpoint (torchvision's names)
  /// to this encoder's key, or nil for parts the encoder does not keep (the classifier).
  func encoderKey(forClassificationKey key: String) -> String?
}

extension Encoder {
  /// Loads an ImageNet classification checkpoint (e.g. torchvision's resnet50
  /// or vgg16 weights), ignoring its classifier. When this encoder takes more
  /// than 3 input channels, the first convolution keeps the pretrained RGB
  /// filters and its extra channels start as their mean (the "surgery" that lets
  /// an RGB network also read e.g. a previous mask).
  @discardableResult
  public func loadClassificationCheckpoint(_ checkpoint: StateDict) throws -> LoadReport {
    var entries: [(String, Tensor)] = []
    for (key, tensor) in checkpoint {
      guard let name = encoderKey(forClassificationKey: key) else { continue }
      entries.append((name, name == inputConvolutionKey ? try widenedInputFilters(tensor) : tensor))
    }
    return try loadStateDict(entries)
  }

  private func widenedInputFilters(_ pretrained: Tensor) throws -> Tensor {
    guard let target = try stateDict().first(where: { $0.0 == inputConvolutionKey })?.1 else {
      throw TorchError("\(type(of: self)): no parameter named \(inputConvolutionKey)")
    }
    let have = pretrained.shape, want = target.shape
    guard have.count == 4, want.count == 4, have[1] < want[1], have[0] == want[0], have[2...] == want[2...] else {
      return pretrained  // same shape, or a mismatch loadStateDict reports
    }
    let extra = try pretrained.mean(dim: 1, keepDim: true).expand([want[0], want[1] - have[1], want[2], want[3]])
    return try Tensor.cat([pretrained, extra], dim: 1)
  }
}

/// Turns encoder features into class logits (at any stride; the model upsamples).
public protocol Decoder: Module {
  func forward(features: [Tensor], inputSize: Size2) throws -> Tensor
  /// The model pads its input (bottom and right) to a multiple of this and crops
  /// the logits back: decoders that double the resolution stage by stage up to the
  /// input need every feature to be exactly half the next. 1: any size.
  var requiredDivisor: Int { get }
}

extension Decoder {
  public var requiredDivisor: Int { 1 }
}

/// The logits of a segmentation model at the input's resolution: `out` from the
/// main head and, for models trained with one, `aux` from the auxiliary head.
public struct SegmentationOutput {
  public let out: Tensor
  public let aux: Tensor?

  public init(out: Tensor, aux: Tensor?) {
    self.out = out
    self.aux = aux
  }
}

/// Encoder, decoder, head: any encoder with any decoder. Parameters are named as
/// torchvision names them (`backbone.*`, `classifier.*`, `aux_classifier.*`).
public final class SegmentationModel: Module {
  public let backbone: any Encoder
  public let classifier: any Decoder
  public let auxClassifier: (any Layer)?
  /// Which encoder feature the auxiliary head reads (torchvision: layer3, index 2).
  public let auxFeatureIndex: Int

  public init(backbone: any Encoder, classifier: any Decoder, auxClassifier: (any Layer)? = nil, auxFeatureIndex: Int = 2) {
    self.backbone = backbone
    self.classifier = classifier
    self.auxClassifier = auxClassifier
    self.auxFeatureIndex = auxFeatureIndex
    super.init()
    registerModule("backbone", backbone)
    registerModule("classifier", classifier)
    if let auxClassifier { registerModule("aux_classifier", auxClassifier) }
  }

  /// The memory format inputs are converted to (see `optimizeForInference`).
  public private(set) var inputMemoryFormat: Tensor.MemoryFormat = .contiguous

  /// Prepares the model for fast inference: evaluation mode, batch norm folded
  /// into the convolutions, and (by default) channels-last weights and inputs,
  /// which oneDNN's CPU convolutions run faster. Parameters keep their values
  /// and names; `train()` undoes the folding.
  public func optimizeForInference(channelsLast: Bool = true) throws {
    eval()
    if channelsLast { try to(memoryFormat: .channelsLast) }
    inputMemoryFormat = channelsLast ? .channelsLast : .contiguous
    try foldBatchNorm()
  }

  public func forward(_ x: Tensor) throws -> SegmentationOutput {
    let x = inputMemoryFormat == .contiguous ? x : try x.contiguous(inputMemoryFormat)
    let shape = x.shape
    guard shape.count == 4 else { throw TorchError("expected an (N, C, H, W) image batch, got shape \(shape)") }
    let size = Size2(shape[2], shape[3])
    let divisor = classifier.requiredDivisor
    let padded = Size2((size.height + divisor - 1) / divisor * divisor, (size.width + divisor - 1) / divisor * divisor)
    // Replicating the border rather than zeros adds no artificial edge to the image.
    let input = padded == size
      ? x : try x.pad([0, padded.width - size.width, 0, padded.height - size.height], mode: .replicate)
    let features = try backbone.features(input)
    let out = try classifier.forward(features: features, inputSize: padded).resized(to: padded).cropped(to: size)
    let aux = try auxClassifier.map {
      try $0.forward(features[auxFeatureIndex]).resized(to: padded).cropped(to: size)
    }
    return SegmentationOutput(out: out, aux: aux)
  }

  public func callAsFunction(_ x: Tensor) throws -> SegmentationOutput { try forward(x) }
}
