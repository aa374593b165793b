import SegKitNN

extension ModelZoo {
  /// torchvision's MobileNetV3-Large segmentation models.
  static let mobileNetV3Names = ["deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"]

  /// As torchvision builds them: the backbone at output stride 16 reading blocks 4
  /// (40 channels, stride 8) and 16 (960 channels). DeepLabV3 puts DeepLabHead on block 16
  /// and, with `auxiliaryHead`, FCNHead on block 4; LR-ASPP combines the two and has
  /// no auxiliary head (`auxiliaryHead` is ignored, as torchvision refuses one).
  static func makeMobileNetV3(_ name: String, classes: Int, auxiliaryHead: Bool) throws -> SegmentationModel {
    let backbone = try MobileNetV3Large(
      outputStride: 16, featureIndices: MobileNetV3Large.torchvisionSegmentationFeatureIndices)
    let low = backbone.featureChannels[1], high = backbone.featureChannels[3]
    switch name {
    case "deeplabv3_mobilenet_v3_large":
      return SegmentationModel(
        backbone: backbone, classifier: try DeepLabHead(inChannels: high, classes: classes),
        auxClassifier: auxiliaryHead ? try FCNHead(inChannels: low, classes: classes) : nil, auxFeatureIndex: 1)
    case "lraspp_mobilenet_v3_large":
      return SegmentationModel(
        backbone: backbone, classifier: try LRASPPHead(lowChannels: low, highChannels: high, classes: classes))
    default:
      throw ModelError("unknown MobileNetV3 model '\(name)'; available: \(mobileNetV3Names.joined(separator: ", "))")
    }
  }
}
