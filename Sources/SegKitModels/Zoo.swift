import Foundation
import SegKitNN

/// Builds models by name: `DECODER_ENCODER` for every decoder in `decoders` over
/// every encoder in `EncoderRegistry.names` (`unet_resnet34`, `fcn8s_vgg16`,
/// `deeplabv3plus_mobilenet_v2`, ...), plus torchvision's six segmentation models,
/// which keep their names, configuration (output stride, auxiliary head) and
/// state-dict keys, so their checkpoints load unmodified. Where a name is both
/// (`deeplabv3_resnet50`), torchvision's model is the one built.
public enum ModelZoo {
  /// The decoder families, as they appear in model names.
  public enum DecoderKind: String, CaseIterable, Sendable {
    case fcn32s, fcn16s, fcn8s, deeplabv3, deeplabv3plus, segnet, unet, linknet

    /// DeepLab runs at output stride 16 (its training default); the others at the
    /// encoder's full stride of 32.
    var defaultOutputStride: Int { self == .deeplabv3 || self == .deeplabv3plus ? 16 : 32 }
  }

  public static let decoders = DecoderKind.allCases.map(\.rawValue)

  static let torchvisionResNetNames = ["fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101"]
  /// torchvision's segmentation models, built as torchvision builds them.
  public static let torchvisionNames = torchvisionResNetNames + mobileNetV3Names

  /// Video object segmentation networks: OSVOS as its release builds it
  /// (`osvos_vgg16`), then OSVOS's figure over each other encoder.
  public static let videoObjectSegmentationNames =
    ["osvos_vgg16"] + EncoderRegistry.names.filter { $0 != "vgg16" }.map { "osvos_\($0)" }

  /// MaskRNN over each OSVOS encoder (`maskrnn_vgg16`, `maskrnn_resnet18`, …): networks
  /// on a 6-channel input (frame, warped mask, flow magnitudes), so not among `names`,
  /// which take images.
  public static let maskRNNNames = videoObjectSegmentationNames.map { "maskrnn_" + $0.dropFirst("osvos_".count) }

  /// Optical flow networks (`FlowNetS`): flownet2-pytorch's FlowNet2-S and DVSNet's
  /// thin FlowNetS. They take frame pairs, so they are not among `names` either.
  public static let flowNetworkNames = ["flownet2s", "flownets_thin"]

  /// The widths of flow network `name`, or nil when it is not one.
  public static func flowNetworkWidths(_ name: String) -> FlowNetS.Widths? { ModelFamily(name: name)?.flowWidths }

  /// Every model name: torchvision's six first, then each decoder over each encoder,
  /// then the video object segmentation networks.
  public static let names: [String] = {
    let generic = decoders.flatMap { decoder in EncoderRegistry.names.map { "\(decoder)_\($0)" } }
    return torchvisionNames + generic.filter { !torchvisionNames.contains($0) } + videoObjectSegmentationNames
  }()

  /// The class count a model is built for whatever is asked (1 for the one-channel
  /// foreground networks), or nil when it takes any.
  public static func fixedClasses(of name: String) -> Int? {
    ModelFamily(name: name)?.isForeground == true ? 1 : nil
  }

  /// - Parameters:
  ///   - classes: number of output classes (21 for torchvision's VOC-class checkpoints).
  ///   - outputStride: 32, 16 or 8 (encoders dilate their last stages to keep the
  ///     finer stride); nil: 8 for torchvision's ResNet models, 16 for their
  ///     MobileNetV3 ones and for `deeplabv3*`, 32 otherwise.
  ///   - inputChannels: 3 for RGB; more for extra inputs such as a previous mask.
  ///   - auxiliaryHead: an FCNHead on the stride-16 feature; nil: torchvision's
  ///     models have one (their checkpoints do), the others not.
  ///   - atrousRates: ASPP's rates for `deeplabv3*`; nil: `ASPP.rates(outputStride:)`.
  ///   - separable: depthwise-separable 3×3 convolutions in DeepLabv3+'s ASPP and decoder.
  ///   - weights: a checkpoint to load, see `loadWeights(_:into:)`.
  public static func make(
    _ name: String, classes: Int = 21, outputStride: Int? = nil, inputChannels: Int = 3, auxiliaryHead: Bool? = nil,
    atrousRates: [Int]? = nil, separable: Bool = false, weights: URL? = nil
  ) throws -> any SegmentationNetwork {
    let model: any SegmentationNetwork
    switch try ModelFamily.parse(name) {
    case .maskRNN(let encoder):
      guard classes == 1, outputStride == nil, auxiliaryHead != true, atrousRates == nil, !separable, inputChannels == 3 else {
        throw ModelError("\(name) is built as MaskRNN: one output channel (classes 1), no output stride, auxiliary head or rates to set")
      }
      model = try MaskRNN(encoder: encoder)
    case .osvos(let encoder):
      guard classes == 1, outputStride == nil, auxiliaryHead != true, atrousRates == nil, !separable else {
        throw ModelError("\(name) is built as OSVOS builds it: one output channel (classes 1), no output stride, auxiliary head or rates to set")
      }
      model = try OSVOS(encoder: encoder, inputChannels: inputChannels)
    case .torchvision(let name) where mobileNetV3Names.contains(name):
      guard inputChannels == 3, outputStride ?? 16 == 16, atrousRates == nil else {
        throw ModelError("\(name) is built as torchvision builds it: 3 input channels, output stride 16, default rates")
      }
      model = try makeMobileNetV3(name, classes: classes, auxiliaryHead: auxiliaryHead ?? true)
    case .torchvision(let name):
      model = try makeTorchvisionResNet(
        name, classes: classes, outputStride: outputStride ?? 8, inputChannels: inputChannels,
        auxiliaryHead: auxiliaryHead ?? true, atrousRates: atrousRates)
    case .semantic(let decoder, let encoderName):
      let encoder = try EncoderRegistry.make(
        encoderName, outputStride: outputStride ?? decoder.defaultOutputStride, inputChannels: inputChannels)
      model = try assemble(
        decoder, encoder: encoder, classes: classes, auxiliaryHead: auxiliaryHead ?? false, atrousRates: atrousRates,
        separable: separable)
    case .flow:
      throw ModelError("\(name) is a flow network (frame pairs in, flow out), not a segmentation network; it is built by NetworkFlow")
    }
    if let weights { try loadWeights(weights, into: model) }
    return model
  }

  /// `decoder` over `encoder`, reading only the encoder's feature channels and strides.
  public static func assemble(
    _ decoder: DecoderKind, encoder: any Encoder, classes: Int, auxiliaryHead: Bool = false, atrousRates: [Int]? = nil,
    separable: Bool = false
  ) throws -> SegmentationModel {
    let channels = encoder.featureChannels, strides = encoder.featureStrides
    let rates = atrousRates ?? ASPP.rates(outputStride: encoder.outputStride)
    let classifier: any Decoder
    // FCN and DeepLabHead end in class scores themselves (see `Decoder`); the others get a class head.
    var classHead: ClassHead?
    switch decoder {
    case .fcn32s, .fcn16s, .fcn8s:
      classifier = try FCNDecoder(
        FCNDecoder.Variant(rawValue: decoder.rawValue)!, featureChannels: channels, featureStrides: strides,
        classes: classes)
    case .deeplabv3: classifier = try DeepLabHead(inChannels: channels[3], classes: classes, rates: rates)
    case .deeplabv3plus:
      classifier = try DeepLabV3PlusDecoder(featureChannels: channels, rates: rates, separable: separable)
    case .segnet: classifier = try SegNetDecoder(featureChannels: channels)
    case .unet: classifier = try UNetDecoder(featureChannels: channels)
    case .linknet:
      classifier = try LinkNetDecoder(featureChannels: channels, featureStrides: strides)
      classHead = try ClassHead.upsampling(inChannels: classifier.outputChannels, classes: classes)
    }
    if classifier.classHeadKey != nil && classHead == nil {
      classHead = try ClassHead(inChannels: classifier.outputChannels, classes: classes)
    }
    let aux = auxiliaryHead ? try FCNHead(inChannels: channels[2], classes: classes) : nil
    return SegmentationModel(backbone: encoder, classifier: classifier, classHead: classHead, auxClassifier: aux)
  }

  /// torchvision's fcn_resnet50/101 and deeplabv3_resnet50/101: FCNHead or
  /// DeepLabHead on layer4, FCNHead on layer3 as the auxiliary head.
  static func makeTorchvisionResNet(
    _ name: String, classes: Int, outputStride: Int, inputChannels: Int, auxiliaryHead: Bool, atrousRates: [Int]?
  ) throws -> SegmentationModel {
    let parts = name.split(separator: "_", maxSplits: 1).map(String.init)
    let backbone = try EncoderRegistry.make(parts[1], outputStride: outputStride, inputChannels: inputChannels)
    let channels = backbone.featureChannels
    let classifier: any Decoder = parts[0] == "fcn"
      ? try FCNHead(inChannels: channels[3], classes: classes)
      : try DeepLabHead(
        inChannels: channels[3], classes: classes, rates: atrousRates ?? ASPP.rates(outputStride: outputStride))
    let aux = auxiliaryHead ? try FCNHead(inChannels: channels[2], classes: classes) : nil
    return SegmentationModel(backbone: backbone, classifier: classifier, auxClassifier: aux)
  }

  /// Loads a checkpoint (safetensors, or a PyTorch .pth/.pt) into `model`, telling
  /// the two kinds apart by their keys: a whole model's state dict (keys under
  /// `encoderKeyPrefix`, `backbone.*`, e.g. torchvision's segmentation checkpoints)
  /// loads strictly into the model, except an auxiliary head the model was built without; anything
  /// else is taken as the encoder's ImageNet classification checkpoint (e.g.
  /// torchvision's resnet50), whose classifier is dropped.
  @discardableResult
  public static func loadWeights(_ url: URL, into model: any SegmentationNetwork) throws -> LoadReport {
    try loadWeights(StateDict.load(contentsOf: url), into: model)
  }

  /// Loads a checkpoint already read from disk; see `loadWeights(_:into:)` for the URL form.
  @discardableResult
  public static func loadWeights(_ checkpoint: StateDict, into model: any SegmentationNetwork) throws -> LoadReport {
    guard checkpoint.names.contains(where: { $0.hasPrefix(model.encoderKeyPrefix) }) else {
      return try model.encoder.loadClassificationCheckpoint(checkpoint)
    }
    let hasAux = model.outputNames.contains("aux")
    return try model.loadStateDict(checkpoint, rename: { hasAux || !$0.hasPrefix("aux_classifier.") ? $0 : nil })
  }

  /// The names closest to `name`: those containing it, and those within a few edits.
  public static func closeMatches(to name: String, limit: Int = 6) -> [String] {
    Spelling.closest(to: name, among: names, limit: limit, substrings: true)
  }

  public static func unknownModel(_ name: String) -> ModelError {
    let matches = closeMatches(to: name)
    let suggestion = matches.isEmpty ? "" : " Did you mean \(matches.joined(separator: ", "))?"
    return ModelError("""
      unknown model '\(name)'.\(suggestion) Models are DECODER_ENCODER with decoders \
      \(decoders.joined(separator: ", ")) and encoders \(EncoderRegistry.names.joined(separator: ", ")), \
      or torchvision's \(torchvisionNames.joined(separator: ", ")) (`segkit models` lists them all).
      """)
  }
}

extension ModelZoo {
  /// A row of `segkit models`.
  public struct CatalogEntry: Sendable {
    public let name: String
    /// Trainable parameters with `classes` output classes (buffers not counted).
    public let parameters: Int
    /// FLOPs of one forward pass on a 3×512×512 image (see `FLOPCounter`).
    public let flops: Int
  }

  /// Builds each model (default configuration, `classes` classes, torchvision's
  /// auxiliary heads included) and counts its parameters and FLOPs at 512×512.
  public static func catalog(_ names: [String] = names, classes: Int = 21) throws -> [CatalogEntry] {
    try names.map { name in
      let model = try make(name, classes: fixedClasses(of: name) ?? classes)
      return CatalogEntry(name: name, parameters: model.parameterCount, flops: try FLOPCounter.count(model, size: 512))
    }
  }
}
