import Foundation

extension SegmentationDataset {
  /// Pascal VOC 2012 segmentation: `split` is train, val, trainval or test (test has no labels).
  /// `root` is the VOC2012 folder or one holding VOC2012 or VOCdevkit/VOC2012.
  public static func voc(root: URL, split: String) throws -> SegmentationDataset {
    let voc = try vocFolder(root, format: .voc)
    let ids = try Layout.names(voc.appendingPathComponent("ImageSets/Segmentation/\(split).txt"), .voc)
    let files = ids.map { id in
      SampleFiles(
        name: id, image: voc.appendingPathComponent("JPEGImages/\(id).jpg"),
        label: split == "test" ? nil : .png(voc.appendingPathComponent("SegmentationClass/\(id).png")))
    }
    // A classes.txt beside the VOC folders (as `segkit data synth` writes) names other classes.
    guard Layout.exists(voc.appendingPathComponent("classes.txt")) else {
      return SegmentationDataset(format: .voc, root: voc, split: split, files: files, colormap: .pascal,
                                 labelMapping: .identity(classes: 21))
    }
    let colormap = try folderColormap(voc)
    return SegmentationDataset(format: .voc, root: voc, split: split, files: files, colormap: colormap,
                               labelMapping: .identity(classes: colormap.classNames.count))
  }

  /// Pascal VOC 2012 with the SBD augmentation.
  ///
  /// `train_aug` (alias `train`) is (VOC train ∪ SBD train ∪ SBD val) − VOC val: 10,582
  /// images for the full datasets. An image in VOC's segmentation trainval takes VOC's
  /// own annotation (finer, with void boundaries); the others take SBD's `GTcls.Segmentation`.
  /// `val` is VOC's val with VOC's annotations, untouched by SBD. Ids keep the order of
  /// VOC train, then SBD train, then SBD val, without repeats.
  public static func vocAug(root: URL, split: String, sbd: URL? = nil) throws -> SegmentationDataset {
    let voc = try vocFolder(root, format: .vocAug)
    guard split == "train_aug" || split == "train" || split == "val" else {
      throw DataError("voc_aug has the splits train_aug (alias train) and val, not '\(split)'")
    }
    let splits = voc.appendingPathComponent("ImageSets/Segmentation")
    let vocVal = try Layout.names(splits.appendingPathComponent("val.txt"), .vocAug)
    let vocImage = { (id: String) in voc.appendingPathComponent("JPEGImages/\(id).jpg") }
    let vocLabel = { (id: String) in SampleFiles.LabelSource.png(voc.appendingPathComponent("SegmentationClass/\(id).png")) }
    if split == "val" {
      let files = vocVal.map { SampleFiles(name: $0, image: vocImage($0), label: vocLabel($0)) }
      return SegmentationDataset(format: .vocAug, root: root, split: split, files: files, colormap: .pascal,
                                 labelMapping: .identity(classes: 21))
    }
    let sbdCandidates = [sbd, root.appendingPathComponent("benchmark_RELEASE/dataset"),
                         root.appendingPathComponent("SBD/dataset"), root.appendingPathComponent("dataset"),
                         sbd?.appendingPathComponent("dataset")].compactMap { $0 }
    guard let sbdFolder = sbdCandidates.first(where: { Layout.isDirectory($0.appendingPathComponent("cls")) }) else {
      throw DataError("\(root.path): no SBD folder (dataset/cls) found; a voc_aug dataset is laid out as:\n\(DatasetFormat.vocAug.expectedLayout)")
    }
    let vocTrain = try Layout.names(splits.appendingPathComponent("train.txt"), .vocAug)
    let vocTrainval = Set(try Layout.names(splits.appendingPathComponent("trainval.txt"), .vocAug))
    let sbdTrain = try Layout.names(sbdFolder.appendingPathComponent("train.txt"), .vocAug)
    let sbdVal = try Layout.names(sbdFolder.appendingPathComponent("val.txt"), .vocAug)
    let excluded = Set(vocVal)
    var seen = Set<String>()
    var files: [SampleFiles] = []
    for id in vocTrain + sbdTrain + sbdVal where !excluded.contains(id) && seen.insert(id).inserted {
      let inVOC = vocTrainval.contains(id)
      var image = vocImage(id)
      if !inVOC && !Layout.exists(image) { image = sbdFolder.appendingPathComponent("img/\(id).jpg") }
      let label: SampleFiles.LabelSource = inVOC
        ? vocLabel(id)
        : .matlab(sbdFolder.appendingPathComponent("cls/\(id).mat"), variable: "GTcls", field: "Segmentation")
      files.append(SampleFiles(name: id, image: image, label: label))
    }
    return SegmentationDataset(format: .vocAug, root: root, split: "train_aug", files: files, colormap: .pascal,
                               labelMapping: .identity(classes: 21))
  }

  /// The VOC2012 folder: `root` itself or VOC2012 / VOCdevkit/VOC2012 under it.
  static func vocFolder(_ root: URL, format: DatasetFormat) throws -> URL {
    try Layout.requireDirectory(root, format)
    let candidates = [root, root.appendingPathComponent("VOC2012"), root.appendingPathComponent("VOCdevkit/VOC2012")]
    guard let voc = candidates.first(where: { Layout.isDirectory($0.appendingPathComponent("JPEGImages")) }) else {
      throw DataError("\(root.path): no Pascal VOC 2012 folder (JPEGImages) found; a \(format.rawValue) dataset is laid out as:\n\(format.expectedLayout)")
    }
    return voc
  }
}
