import Foundation

extension SegmentationDataset {
  /// A plain folder: `images/<stem>.{jpg,jpeg,png}` paired with `masks/<stem>.png` (class
  /// indices, 255 void). `classes.txt`, when present, lists one class per line as "name" or
  /// "name R G B" (colours default to the Pascal colormap); without it any index is a class.
  /// With a split, `splits/<split>.txt` or `<split>.txt` lists the stems; without, every image.
  public static func folder(root: URL, split: String? = nil) throws -> SegmentationDataset {
    try Layout.requireDirectory(root, .folder)
    let images = root.appendingPathComponent("images")
    try Layout.requireDirectory(images, .folder, what: "images")
    let byStem = Dictionary(
      try Layout.contents(images).filter { ["jpg", "jpeg", "png"].contains($0.pathExtension.lowercased()) }
        .map { ($0.deletingPathExtension().lastPathComponent, $0) },
      uniquingKeysWith: { first, _ in first })
    let stems: [String]
    if let split {
      let candidates = [root.appendingPathComponent("splits/\(split).txt"), root.appendingPathComponent("\(split).txt")]
      let list = candidates.first(where: Layout.exists) ?? candidates[0]
      stems = try Layout.lines(list, .folder)
      if let missing = stems.first(where: { byStem[$0] == nil }) {
        throw DataError("\(list.path): lists '\(missing)' but images/ has no \(missing).jpg, .jpeg or .png")
      }
    } else {
      stems = byStem.keys.sorted()
    }
    let files = stems.map { stem in
      SampleFiles(name: stem, image: byStem[stem]!, label: .png(root.appendingPathComponent("masks/\(stem).png")))
    }
    let colormap = try folderColormap(root)
    let mapping = colormap.classNames.isEmpty
      ? LabelMapping.identity(classes: Int(voidLabel)) : .identity(classes: colormap.classNames.count)
    return SegmentationDataset(format: .folder, root: root, split: split ?? "all", files: files, colormap: colormap,
                               labelMapping: mapping, openEndedClasses: colormap.classNames.isEmpty)
  }

  static func folderColormap(_ root: URL) throws -> Colormap {
    let url = root.appendingPathComponent("classes.txt")
    guard Layout.exists(url) else { return try Colormap(name: "folder", classNames: [], colors: []) }
    var names: [String] = []
    var colors: [(UInt8, UInt8, UInt8)] = []
    for (number, line) in try Layout.lines(url, .folder).enumerated() {
      let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
      let rgb = words.suffix(3).compactMap { UInt8($0) }
      if words.count >= 4 && rgb.count == 3 {
        names.append(words.dropLast(3).joined(separator: " "))
        colors.append((rgb[0], rgb[1], rgb[2]))
      } else {
        guard colors.isEmpty else {
          throw DataError("\(url.path): line \(number + 1) has no colour while earlier lines do: \(line)")
        }
        names.append(line)
      }
    }
    return try Colormap(name: "folder", classNames: names, colors: colors)
  }
}
