import Foundation

/// Frame pairs with their ground-truth optical flow, for training and scoring flow
/// networks, in FlyingChairs' layout:
///
///     <root>/data/00001_img1.ppm, 00001_img2.ppm, 00001_flow.flo, …   (flow from img1 to img2)
///     <root>/FlyingChairs_train_val.txt                               (line k: 1 train, 2 val)
///
/// The frames may be PPM, PNG or JPEG (`<n>_img1.png` for SegKit's synthetic pairs).
/// A sample's image is the first frame, `frames[.next]` the second and `flows[.next]`
/// the flow between them.
public struct FlowPairs: SampleSource {
  public struct Pair: Sendable, Hashable {
    public let name: String
    public let first: URL
    public let second: URL
    public let flow: URL
  }

  public let root: URL
  public let split: String
  public let pairs: [Pair]

  public var count: Int { pairs.count }

  public static let expectedLayout = """
      <root>/data/<n>_img1.ppm   first frame (or .png, .jpg)
      <root>/data/<n>_img2.ppm   second frame
      <root>/data/<n>_flow.flo   flow from the first frame to the second (Middlebury .flo)
      <root>/FlyingChairs_train_val.txt   one line per pair in name order: 1 train, 2 val (needed for those splits)
    """

  /// Split `train` or `val` (by FlyingChairs_train_val.txt) or `all`.
  public static func flyingChairs(root: URL, split: String) throws -> FlowPairs {
    let data = root.appendingPathComponent("data")
    guard Layout.isDirectory(data) else {
      throw DataError("\(data.path): no such folder; a FlyingChairs dataset is laid out as:\n\(expectedLayout)")
    }
    let files = try Layout.contents(data)
    var frames: [String: URL] = [:]
    var flows: [String: URL] = [:]
    for file in files {
      let stem = file.deletingPathExtension().lastPathComponent
      if stem.hasSuffix("_flow"), file.pathExtension == "flo" {
        flows[String(stem.dropLast("_flow".count))] = file
      } else if stem.hasSuffix("_img1") || stem.hasSuffix("_img2"),
                ["ppm", "png", "jpg", "jpeg"].contains(file.pathExtension.lowercased()) {
        frames[stem] = file
      }
    }
    let names = flows.keys.sorted()
    guard !names.isEmpty else {
      throw DataError("\(data.path): no <n>_flow.flo files; a FlyingChairs dataset is laid out as:\n\(expectedLayout)")
    }
    let all = try names.map { name -> Pair in
      guard let first = frames[name + "_img1"], let second = frames[name + "_img2"] else {
        throw DataError("\(data.path): \(name)_flow.flo has no \(name)_img1 and \(name)_img2 frames beside it")
      }
      return Pair(name: name, first: first, second: second, flow: flows[name]!)
    }
    let chosen: [Pair]
    switch split {
    case "all":
      chosen = all
    case "train", "val":
      let list = root.appendingPathComponent("FlyingChairs_train_val.txt")
      guard Layout.exists(list) else {
        throw DataError("\(list.path): split file missing (split '\(split)'); a FlyingChairs dataset is laid out as:\n\(expectedLayout)")
      }
      guard let text = try? String(contentsOf: list, encoding: .utf8) else {
        throw DataError("\(list.path): cannot be read as UTF-8 text")
      }
      let marks = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
      guard marks.count == all.count else {
        throw DataError("\(list.path): \(marks.count) lines for \(all.count) pairs in data/; it needs one line per pair")
      }
      if let (line, mark) = marks.enumerated().first(where: { $0.element != "1" && $0.element != "2" }) {
        throw DataError("\(list.path): line \(line + 1) is '\(mark)'; each line is 1 (train) or 2 (val)")
      }
      let wanted = split == "train" ? "1" : "2"
      chosen = zip(all, marks).filter { $0.1 == wanted }.map(\.0)
    default:
      throw DataError("FlyingChairs has the splits train, val and all, not '\(split)'")
    }
    return FlowPairs(root: root, split: split, pairs: chosen)
  }

  public func loadSample(at index: Int) throws -> Sample {
    let pair = pairs[index]
    let first = try ImageIO.read(pair.first), second = try ImageIO.read(pair.second)
    let flow = try FlowFile.read(pair.flow)
    guard first.width == second.width, first.height == second.height, flow.width == first.width, flow.height == first.height else {
      throw DataError("\(pair.name): frames of \(first.width)×\(first.height) and \(second.width)×\(second.height) with a \(flow.width)×\(flow.height) flow; all three must have one size")
    }
    return Sample(name: pair.name, image: first, label: nil, frames: [.next: second], flows: [.next: flow])
  }
}

extension Synthetic {
  public struct FlowOptions: Sendable {
    public var trainCount = 400
    public var valCount = 40
    public var width = 128
    public var height = 96
    /// The largest shift of a shape's motion, in pixels (the background moves half as far).
    public var maximumShift = 8.0
    public var seed: UInt64 = 0
    public init() {}
  }

  /// Writes synthetic pairs with exact flow (`flowPair`) in FlyingChairs' layout, as PPM
  /// frames: data/00001_img1.ppm, …, and FlyingChairs_train_val.txt (train pairs first).
  public static func writeFlowPairs(to root: URL, options: FlowOptions = FlowOptions()) throws {
    let data = root.appendingPathComponent("data")
    try makeFolders([data])
    let total = options.trainCount + options.valCount
    try parallel(total) { index in
      let pair = try flowPair(seed: options.seed, index: index, width: options.width, height: options.height,
                              maximumShift: options.maximumShift)
      let stem = data.appendingPathComponent(String(format: "%05d", index + 1)).path
      try PortablePixmap.write(pair.first, to: URL(fileURLWithPath: stem + "_img1.ppm"))
      try PortablePixmap.write(pair.second, to: URL(fileURLWithPath: stem + "_img2.ppm"))
      try FlowFile.write(pair.flow, to: URL(fileURLWithPath: stem + "_flow.flo"))
    }
    let marks = (0..<total).map { $0 < options.trainCount ? "1" : "2" }
    try writeLines(marks, to: root.appendingPathComponent("FlyingChairs_train_val.txt"))
  }
}
