import Foundation

extension SegmentationDataset {
  /// ADE20K SceneParsing (ADEChallengeData2016): `split` is train/training or val/validation.
  /// Raw 0 ("other") becomes void and 1–150 become 0–149 (`LabelMapping.ade20k`).
  public static func ade20k(root: URL, split: String) throws -> SegmentationDataset {
    try Layout.requireDirectory(root, .ade20k)
    let base = Layout.isDirectory(root.appendingPathComponent("ADEChallengeData2016"))
      ? root.appendingPathComponent("ADEChallengeData2016") : root
    let folder: String
    switch split {
    case "train", "training": folder = "training"
    case "val", "validation": folder = "validation"
    default: throw DataError("ade20k has the splits train (training) and val (validation), not '\(split)'")
    }
    let images = base.appendingPathComponent("images/\(folder)")
    try Layout.requireDirectory(images, .ade20k, what: "split '\(split)'")
    let files = try Layout.contents(images).filter { $0.pathExtension.lowercased() == "jpg" }.map { image in
      let stem = image.deletingPathExtension().lastPathComponent
      return SampleFiles(name: stem, image: image,
                         label: .png(base.appendingPathComponent("annotations/\(folder)/\(stem).png")))
    }
    return SegmentationDataset(format: .ade20k, root: base, split: folder, files: files, colormap: .ade20k,
                               labelMapping: .ade20k)
  }
}
