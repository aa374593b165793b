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
}

/// Turns encoder features into class logits (at any stride; the model upsamples).
public protocol Decoder: Module {
  func forward(features: [Tensor], inputSize: Size2) throws -> Tensor
}

/// The logits of a segmentation model at the input's resolution: `out` from the
/// main head and, for models trained with one, `aux` from the auxiliary head.
public struct SegmentationOutput {
  public let out: Tensor
  public let aux: Tensor?
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

  public func forward(_ x: Tensor) throws -> SegmentationOutput {
    let shape = x.shape
    guard shape.count == 4 else { throw TorchError("expected an (N, C, H, W) image batch, got shape \(shape)") }
    let size = Size2(shape[2], shape[3])
    let features = try backbone.features(x)
    let out = try classifier.forward(features: features, inputSize: size).interpolate(size: size, mode: .bilinear)
    let aux = try auxClassifier.map {
      try $0.forward(features[auxFeatureIndex]).interpolate(size: size, mode: .bilinear)
    }
    return SegmentationOutput(out: out, aux: aux)
  }

  public func callAsFunction(_ x: Tensor) throws -> SegmentationOutput { try forward(x) }
}
