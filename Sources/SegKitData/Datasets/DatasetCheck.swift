import Foundation

/// What `segkit data check` finds in a dataset split: its size, image sizes, per-class
/// pixel counts and the problems, each naming a file.
public struct DatasetReport: Sendable {
  public struct ClassCount: Sendable, Equatable {
    public var id: Int
    public var name: String
    public var pixels: Int
  }

  public struct Problem: Sendable, Equatable {
    public var file: String
    public var problem: String
  }

  public var format: DatasetFormat
  public var root: String
  public var split: String
  public var samples: Int
  public var classes: [ClassCount]
  public var voidPixels: Int
  /// "W×H" → number of images of that size.
  public var imageSizes: [String: Int]
  public var problems: [Problem]

  /// `{"samples", "classes": [{"id", "name", "pixels"}], "void_pixels", "problems": [{"file", "problem"}],
  /// "format", "root", "split", "image_sizes": [{"width", "height", "count"}]}`.
  public func json() throws -> Data {
    let sizes = imageSizes.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { key, count -> [String: Any] in
      let parts = key.split(separator: "×").compactMap { Int($0) }
      return ["width": parts[0], "height": parts[1], "count": count]
    }
    let object: [String: Any] = [
      "samples": samples,
      "classes": classes.map { ["id": $0.id, "name": $0.name, "pixels": $0.pixels] as [String: Any] },
      "void_pixels": voidPixels,
      "problems": problems.map { ["file": $0.file, "problem": $0.problem] },
      "format": format.rawValue,
      "root": root,
      "split": split,
      "image_sizes": sizes,
    ]
    return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
  }

  /// A human-readable summary.
  public var text: String {
    var lines = ["\(format.rawValue) \(split) at \(root): \(samples) samples"]
    let sizes = imageSizes.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
    lines.append("image sizes: " + sizes.prefix(5).map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
                 + (sizes.count > 5 ? ", and \(sizes.count - 5) more" : ""))
    let total = classes.reduce(voidPixels) { $0 + $1.pixels }
    let percent = { (count: Int) in total == 0 ? "0.00%" : String(format: "%.2f%%", 100 * Double(count) / Double(total)) }
    lines.append("class pixel frequencies:")
    let width = max(8, classes.map(\.name.count).max() ?? 0)
    for entry in classes {
      lines.append("  \(String(format: "%3d", entry.id))  \(entry.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(String(format: "%12d", entry.pixels))  \(percent(entry.pixels))")
    }
    lines.append("  void \("".padding(toLength: width, withPad: " ", startingAt: 0))  \(String(format: "%12d", voidPixels))  \(percent(voidPixels))")
    if problems.isEmpty {
      lines.append("no problems found")
    } else {
      lines.append("\(problems.count) problem\(problems.count == 1 ? "" : "s"):")
      lines += problems.map { "  \($0.file): \($0.problem)" }
    }
    return lines.joined(separator: "\n")
  }
}

extension SegmentationDataset {
  /// Decodes every image and label of the split (in parallel) and reports sizes,
  /// class frequencies and problems: missing files, unreadable or truncated files,
  /// labels whose size differs from their image, label values outside the classes.
  public func check() -> DatasetReport {
    var results = [SampleCheck?](repeating: nil, count: count)
    let lock = NSLock()
    DispatchQueue.concurrentPerform(iterations: count) { index in
      let result = checkSample(index)
      lock.lock()
      results[index] = result
      lock.unlock()
    }
    var counts = [Int](repeating: 0, count: 256)
    var sizes: [String: Int] = [:]
    var problems: [DatasetReport.Problem] = []
    for result in results.compactMap({ $0 }) {
      for i in 0..<256 { counts[i] += result.counts[i] }
      if let size = result.size { sizes["\(size.width)×\(size.height)", default: 0] += 1 }
      problems += result.problems
    }
    let seen = (0..<256).filter { $0 != Int(voidLabel) && counts[$0] > 0 }
    let classCount = openEndedClasses ? max(classNames.count, (seen.max() ?? -1) + 1) : classNames.count
    let prefix = format == .davis2017 ? "object" : "class"
    let classes = (0..<classCount).map { id in
      DatasetReport.ClassCount(id: id, name: id < classNames.count ? classNames[id] : "\(prefix) \(id)", pixels: counts[id])
    }
    return DatasetReport(format: format, root: root.path, split: split, samples: count, classes: classes,
                         voidPixels: counts[Int(voidLabel)], imageSizes: sizes, problems: problems)
  }

  private struct SampleCheck {
    var counts = [Int](repeating: 0, count: 256)
    var size: (width: Int, height: Int)?
    var problems: [DatasetReport.Problem] = []

    mutating func add(_ url: URL, _ error: Error) {
      let text = "\(error)"
      let prefix = "\(url.path): "
      problems.append(.init(file: url.path, problem: text.hasPrefix(prefix) ? String(text.dropFirst(prefix.count)) : text))
    }
  }

  private func checkSample(_ index: Int) -> SampleCheck {
    let files = self.files[index]
    var result = SampleCheck()
    var image: Image?
    if !Layout.exists(files.image) {
      result.problems.append(.init(file: files.image.path, problem: "image file missing"))
    } else {
      do {
        image = try ImageIO.read(files.image)
        result.size = (image!.width, image!.height)
      } catch { result.add(files.image, error) }
    }
    guard let labelURL = files.label?.url else { return result }
    guard Layout.exists(labelURL) else {
      result.problems.append(.init(file: files.image.path, problem: "image without label: \(labelURL.path) is missing"))
      return result
    }
    let raw: Image
    do {
      guard let decoded = try rawLabel(at: index) else { return result }
      raw = decoded
    } catch {
      result.add(labelURL, error)
      return result
    }
    if let image, image.width != raw.width || image.height != raw.height {
      result.problems.append(.init(
        file: labelURL.path,
        problem: "label is \(raw.width)×\(raw.height) but its image \(files.image.lastPathComponent) is \(image.width)×\(image.height)"))
    }
    let (label, invalid) = labelMapping.apply(raw)
    if !invalid.isEmpty {
      result.problems.append(.init(file: labelURL.path, problem: "\(LabelMapping.describe(invalid)) outside the \(format.rawValue) classes and not void"))
    }
    // Invalid values were mapped to void; count only valid pixels so frequencies stay meaningful.
    let invalidPixels = invalid.values.reduce(0, +)
    for value in label.pixels { result.counts[Int(value)] += 1 }
    result.counts[Int(voidLabel)] -= invalidPixels
    return result
  }
}
