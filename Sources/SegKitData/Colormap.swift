/// A dataset's class names and the colour of each label index (256 entries, so
/// every 8-bit label, void 255 included, has one).
public struct Colormap: Sendable {
  public let name: String
  public let classNames: [String]
  public let colors: [(UInt8, UInt8, UInt8)]

  /// `colors` may hold fewer than 256 entries; the rest come from the Pascal colormap.
  public init(name: String, classNames: [String], colors: [(UInt8, UInt8, UInt8)]) throws {
    guard colors.count <= 256 else {
      throw DataError("colormap '\(name)' has \(colors.count) colours; at most 256 fit 8-bit labels")
    }
    guard classNames.count <= 256 else {
      throw DataError("colormap '\(name)' has \(classNames.count) classes; at most 256 fit 8-bit labels")
    }
    self.name = name
    self.classNames = classNames
    self.colors = colors + Colormap.pascalColors[colors.count...]
  }

  private init(known name: String, classNames: [String], colors: [(UInt8, UInt8, UInt8)], rest: (UInt8, UInt8, UInt8)) {
    self.name = name
    self.classNames = classNames
    self.colors = colors + Array(repeating: rest, count: 256 - colors.count)
  }

  /// The Pascal VOC colormap: the bits of the index interleaved into the high
  /// bits of red, green and blue (index 255, void, is (224, 224, 192)).
  static let pascalColors: [(UInt8, UInt8, UInt8)] = (0..<256).map { index in
    var (r, g, b) = (0, 0, 0)
    var i = index
    for shift in stride(from: 7, through: 0, by: -1) {
      r |= (i & 1) << shift
      g |= ((i >> 1) & 1) << shift
      b |= ((i >> 2) & 1) << shift
      i >>= 3
    }
    return (UInt8(r), UInt8(g), UInt8(b))
  }

  public static let pascal = Colormap(
    known: "pascal",
    classNames: [
      "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
      "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
    ],
    colors: pascalColors, rest: (0, 0, 0))

  /// Cityscapes' 19 train ids with the colours of the official label table; other indices black.
  public static let cityscapes = Colormap(
    known: "cityscapes",
    classNames: [
      "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
      "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
    ],
    colors: [
      (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
      (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
      (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
    ],
    rest: (0, 0, 0))

  /// ADE20K SceneParsing's 150 classes as train ids 0–149 (raw annotation value − 1); other indices black.
  public static let ade20k = Colormap(known: "ade20k", classNames: ade20kClassNames, colors: ade20kColors, rest: (0, 0, 0))

  /// CamVid in SegNet's 11-class version; index 11 (unlabelled) and the rest black.
  public static let camvid = Colormap(
    known: "camvid",
    classNames: [
      "sky", "building", "pole", "road", "pavement", "tree", "sign symbol", "fence", "car", "pedestrian", "bicyclist",
    ],
    colors: [
      (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
      (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
    ],
    rest: (0, 0, 0))

  public static let all: [Colormap] = [.pascal, .cityscapes, .ade20k, .camvid]

  /// One of pascal, cityscapes, ade20k, camvid (case-insensitive; "voc" is pascal).
  public static func named(_ name: String) throws -> Colormap {
    let key = name.lowercased()
    if key == "voc" { return .pascal }
    guard let map = all.first(where: { $0.name == key }) else {
      throw DataError("unknown colormap '\(name)': expected one of \(all.map(\.name).joined(separator: ", "))")
    }
    return map
  }

  /// The 256 colours as 768 bytes r, g, b, r, g, b, …
  public var paletteBytes: [UInt8] { colors.flatMap { [$0.0, $0.1, $0.2] } }

  /// An RGB image of a 1-channel label map.
  public func colorize(_ labels: Image) throws -> Image {
    guard labels.channels == 1 else {
      throw DataError("colorize needs a 1-channel label map, not \(labels.channels) channels")
    }
    let palette = paletteBytes
    var out = [UInt8](repeating: 0, count: labels.pixels.count * 3)
    for (i, label) in labels.pixels.enumerated() {
      let p = Int(label) * 3
      out[3 * i] = palette[p]
      out[3 * i + 1] = palette[p + 1]
      out[3 * i + 2] = palette[p + 2]
    }
    return try Image(width: labels.width, height: labels.height, channels: 3, pixels: out)
  }
}
