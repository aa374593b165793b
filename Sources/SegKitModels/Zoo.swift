import SegKitNN

/// Builds models by name. torchvision's segmentation models keep their names
/// (`fcn_resnet50`, `deeplabv3_resnet101`, ...) and their state-dict keys, so
/// their checkpoints load unmodified.
public enum ModelZoo {
  public static let names = ["fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101"]

  /// - Parameters:
  ///   - classes: number of output classes (21 for torchvision's VOC-class checkpoints).
  ///   - auxiliaryHead: add torchvision's FCNHead on layer3 (its checkpoints have one).
  public static func make(_ name: String, classes: Int = 21, auxiliaryHead: Bool = true) throws -> SegmentationModel {
    let parts = name.split(separator: "_", maxSplits: 1).map(String.init)
    guard parts.count == 2, names.contains(name) else {
      throw TorchError("unknown model '\(name)'; available: \(names.joined(separator: ", "))")
    }
    let depth = Int(parts[1].dropFirst("resnet".count))!
    // torchvision's segmentation ResNets run at output stride 8.
    let backbone = try ResNet(depth: depth, outputStride: 8)
    let channels = backbone.featureChannels
    let classifier: any Decoder = parts[0] == "fcn"
      ? try FCNHead(inChannels: channels[3], classes: classes)
      : try DeepLabHead(inChannels: channels[3], classes: classes)
    let aux = auxiliaryHead ? try FCNHead(inChannels: channels[2], classes: classes) : nil
    return SegmentationModel(backbone: backbone, classifier: classifier, auxClassifier: aux)
  }
}
