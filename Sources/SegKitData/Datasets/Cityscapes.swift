import Foundation

extension SegmentationDataset {
  /// Cityscapes fine annotations: `split` is train, val or test; label ids become the 19 train ids
  /// of cityscapesScripts' labels.py, every other id void (`LabelMapping.cityscapes`).
  public static func cityscapes(root: URL, split: String) throws -> SegmentationDataset {
    try Layout.requireDirectory(root, .cityscapes)
    let images = root.appendingPathComponent("leftImg8bit/\(split)")
    try Layout.requireDirectory(images, .cityscapes, what: "split '\(split)'")
    let suffix = "_leftImg8bit.png"
    var files: [SampleFiles] = []
    for city in try Layout.contents(images) where Layout.isDirectory(city) {
      for image in try Layout.contents(city) where image.lastPathComponent.hasSuffix(suffix) {
        let stem = String(image.lastPathComponent.dropLast(suffix.count))
        let label = root.appendingPathComponent("gtFine/\(split)/\(city.lastPathComponent)/\(stem)_gtFine_labelIds.png")
        files.append(SampleFiles(name: stem, image: image, label: .png(label)))
      }
    }
    return SegmentationDataset(format: .cityscapes, root: root, split: split, files: files, colormap: .cityscapes,
                               labelMapping: .cityscapes)
  }
}
