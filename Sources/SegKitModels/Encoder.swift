import SegKitNN

/// One feature map an encoder can give: its name in the encoder (torchvision's
/// layer name where there is one), channel count and stride relative to the input.
public struct FeatureLevel: Equatable, Sendable, CustomStringConvertible {
  public let name: String
  public let channels: Int
  public let stride: Int

  public init(_ name: String, channels: Int, stride: Int) {
    self.name = name
    self.channels = channels
    self.stride = stride
  }

  public var description: String { "\(name) (\(channels) channels, stride \(stride))" }
}

/// A feature extractor: the image in, four features at nominal strides 4, 8, 16
/// and 32 out (what decoders read). With dilation replacing stride, the deeper
/// features keep a finer stride (output stride 16 or 8); `featureStrides` says
/// which. An encoder may offer more levels than the four (`featureLevels`), e.g.
/// VGG's stride-1 and stride-2 convolutions for side outputs.
public protocol Encoder: Module {
  /// Channel counts of the four feature maps.
  var featureChannels: [Int] { get }
  /// Strides of the four feature maps, e.g. [4, 8, 16, 16] at output stride 16.
  var featureStrides: [Int] { get }
  /// The encoder's output stride: 32, 16 or 8.
  var outputStride: Int { get }
  func features(_ x: Tensor) throws -> [Tensor]
  /// Every feature map the encoder offers, in the order the network computes them;
  /// the four of `features(_:)` are among them.
  var featureLevels: [FeatureLevel] { get }
  /// The maps of `featureLevels`, one for each, from one forward pass.
  func allFeatures(_ x: Tensor) throws -> [Tensor]
  /// The name of the first convolution's weight, widened when the encoder takes
  /// more input channels than the pretrained RGB checkpoint has.
  var inputConvolutionKey: String { get }
  /// Maps a key of the ImageNet classification checkpoint (torchvision's names)
  /// to this encoder's key, or nil for parts the encoder does not keep (the classifier).
  func encoderKey(forClassificationKey key: String) -> String?
  /// How the images this encoder reads are normalised: ImageNet's (the default), or
  /// another normalisation that a classification checkpoint's first convolution is
  /// folded into on loading (`osvos_vgg16`'s Caffe BGR input).
  var imageNormalization: InputNormalization { get }
}

extension Encoder {
  public var imageNormalization: InputNormalization { .imagenet }
}

extension Encoder {
  /// Encoders that offer only the four features list those, named by their index.
  public var featureLevels: [FeatureLevel] {
    zip(featureChannels, featureStrides).enumerated().map { FeatureLevel("feature\($0)", channels: $1.0, stride: $1.1) }
  }

  public func allFeatures(_ x: Tensor) throws -> [Tensor] { try features(x) }

  /// The maps of the levels named `names` (see `featureLevels`), in that order.
  public func features(_ x: Tensor, levels names: [String]) throws -> [Tensor] {
    let levels = featureLevels.map(\.name)
    let indices = try names.map { name in
      guard let index = levels.firstIndex(of: name) else {
        throw ModelError("\(type(of: self)) has no feature level '\(name)'; levels: \(levels.joined(separator: ", "))")
      }
      return index
    }
    let all = try allFeatures(x)
    return indices.map { all[$0] }
  }
}

/// The strides of four features at nominal strides 4, 8, 16, 32, capped at the
/// output stride (a dilated stage keeps the previous stage's resolution).
func cappedFeatureStrides(outputStride: Int) -> [Int] { [4, 8, 16, 32].map { min($0, outputStride) } }

extension Encoder {
  /// Loads an ImageNet classification checkpoint (e.g. torchvision's resnet50
  /// or vgg16 weights), ignoring its classifier. When this encoder takes more
  /// than 3 input channels, the first convolution keeps the pretrained RGB
  /// filters and its extra channels start as their mean (the "surgery" that lets
  /// an RGB network also read e.g. a previous mask). When the encoder reads images
  /// normalised otherwise than ImageNet's way (`imageNormalization`), the first
  /// convolution's RGB filters and bias are refitted to that input
  /// (`InputNormalization.refit`), so that the features stay those of the checkpoint.
  @discardableResult
  public func loadClassificationCheckpoint(_ checkpoint: StateDict) throws -> LoadReport {
    let biasKey = String(inputConvolutionKey.dropLast(".weight".count)) + ".bias"
    var entries: [(String, Tensor)] = []
    for (key, tensor) in checkpoint {
      guard let name = encoderKey(forClassificationKey: key) else { continue }
      entries.append((name, tensor))
    }
    let weightIndex = entries.firstIndex { $0.0 == inputConvolutionKey }
    if imageNormalization != .imagenet, let weightIndex {
      let biasIndex = entries.firstIndex { $0.0 == biasKey }
      let refitted = try imageNormalization.refit(
        weight: entries[weightIndex].1, bias: biasIndex.map { entries[$0].1 }, trainedFor: .imagenet)
      if let biasIndex, let bias = refitted.bias { entries[biasIndex].1 = bias }
      entries[weightIndex].1 = refitted.weight
    }
    // Extra input channels (a previous mask, scaled like the pixels) start as the
    // mean of the image filters the encoder reads with.
    if let weightIndex { entries[weightIndex].1 = try widenedInputFilters(entries[weightIndex].1) }
    return try loadStateDict(entries)
  }

  private func widenedInputFilters(_ pretrained: Tensor) throws -> Tensor {
    guard let target = try stateDict().first(where: { $0.0 == inputConvolutionKey })?.1 else {
      throw ModelError("\(type(of: self)): no parameter named \(inputConvolutionKey)")
    }
    let have = pretrained.shape, want = target.shape
    guard have.count == 4, want.count == 4, have[1] < want[1], have[0] == want[0], have[2...] == want[2...] else {
      return pretrained  // same shape, or a mismatch loadStateDict reports
    }
    let extra = try pretrained.mean(dim: 1, keepDim: true).expand([want[0], want[1] - have[1], want[2], want[3]])
    return try Tensor.cat([pretrained, extra], dim: 1)
  }
}
