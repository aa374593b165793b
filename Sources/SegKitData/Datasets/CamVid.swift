import Foundation

extension SegmentationDataset {
  /// SegNet's CamVid (11 classes, 11 = unlabelled → void): `split` is train, val or test.
  ///
  /// The list files name paths on SegNet's machine ("/SegNet/CamVid/train/x.png"); a path is
  /// taken relative to `root` when it exists there, otherwise by its last two components.
  public static func camvid(root: URL, split: String) throws -> SegmentationDataset {
    try Layout.requireDirectory(root, .camvid)
    let list = root.appendingPathComponent("\(split).txt")
    let files = try Layout.lines(list, .camvid).enumerated().map { number, line -> SampleFiles in
      let parts = line.split(whereSeparator: \.isWhitespace).map(String.init)
      guard parts.count == 2 else {
        throw DataError("\(list.path): line \(number + 1) is not \"<image> <annotation>\": \(line)")
      }
      // SegNet's lists hold absolute paths of its machine: taken inside the root, never above it.
      for part in parts { _ = try Layout.relativePath(String(part.drop { $0 == "/" }), in: list, line: number + 1) }
      let image = resolve(parts[0], in: root)
      return SampleFiles(name: image.deletingPathExtension().lastPathComponent, image: image,
                         label: .png(resolve(parts[1], in: root)))
    }
    return SegmentationDataset(format: .camvid, root: root, split: split, files: files, colormap: .camvid,
                               labelMapping: .camvid)
  }

  private static func resolve(_ path: String, in root: URL) -> URL {
    let trimmed = path.drop { $0 == "/" }
    let direct = root.appendingPathComponent(String(trimmed))
    if Layout.exists(direct) { return direct }
    let tail = trimmed.split(separator: "/").suffix(2).joined(separator: "/")
    return root.appendingPathComponent(tail)
  }
}
