import Foundation

/// Short video snippets for video semantic segmentation: each snippet's frames in
/// order and the frames that are labelled, as Cityscapes' `leftImg8bit_sequence` ships
/// them (30-frame snippets around each fine annotation, the 20th annotated), as CamVid's
/// 30 fps video is annotated (every 30th frame, the last of its snippet), and as
/// `segkit data synth --kind street` writes them (every frame labelled).
public struct VideoSnippets: Sendable {
  public struct Snippet: Sendable, Hashable {
    /// "<city>_<snippet>", e.g. "frankfurt_000000".
    public let name: String
    public let frames: [URL]
    /// The index in `frames` of the annotated frame, and its label file.
    public let annotated: Int
    public let label: URL
    /// Every labelled frame's label file by index in `frames` (the annotated one among them).
    public let labelFiles: [Int: URL]

    public init(name: String, frames: [URL], annotated: Int, label: URL, labelFiles: [Int: URL]? = nil) {
      (self.name, self.frames, self.annotated, self.label) = (name, frames, annotated, label)
      self.labelFiles = labelFiles ?? [annotated: label]
    }

    /// The labelled frames' indices, in order.
    public var labelled: [Int] { labelFiles.keys.sorted() }
  }

  public let root: URL
  public let split: String
  public let snippets: [Snippet]
  public let colormap: Colormap
  public let labelMapping: LabelMapping

  public var classNames: [String] { colormap.classNames }

  public static let cityscapesLayout = """
      <root>/leftImg8bit_sequence/<split>/<city>/<city>_<snippet>_<frame>_leftImg8bit.png   every frame
      <root>/gtFine/<split>/<city>/<city>_<snippet>_<frame>_gtFine_labelIds.png              the annotated frame (or more)
    """

  /// Cityscapes' sequences of `split`: every snippet with a fine annotation of one of its
  /// frames (label ids mapped to the 19 train ids as for `SegmentationDataset.cityscapes`).
  /// Every frame with a gtFine file is labelled; the annotated one is the frame that
  /// leftImg8bit/ holds too (Cityscapes' fine annotation), else the last labelled.
  public static func cityscapes(root: URL, split: String) throws -> VideoSnippets {
    let sequences = root.appendingPathComponent("leftImg8bit_sequence/\(split)")
    guard Layout.isDirectory(sequences) else {
      throw DataError("\(sequences.path): no such folder (split '\(split)'); Cityscapes sequences are laid out as:\n\(cityscapesLayout)")
    }
    let suffix = "_leftImg8bit.png"
    var snippets: [Snippet] = []
    for city in try Layout.contents(sequences) where Layout.isDirectory(city) {
      // <city>_<snippet>_<frame>: the snippet and frame are the last two "_" fields.
      var frames: [String: [(Int, URL)]] = [:]
      for file in try Layout.contents(city) where file.lastPathComponent.hasSuffix(suffix) {
        let fields = file.lastPathComponent.dropLast(suffix.count).split(separator: "_")
        guard fields.count >= 3, let frame = Int(fields[fields.count - 1]) else {
          throw DataError("\(file.path): not named <city>_<snippet>_<frame>_leftImg8bit.png")
        }
        frames[fields.dropLast().joined(separator: "_"), default: []].append((frame, file))
      }
      for (name, members) in frames.sorted(by: { $0.key < $1.key }) {
        let ordered = members.sorted { $0.0 < $1.0 }
        let labels = ordered.map { frame, _ in
          root.appendingPathComponent(String(format: "gtFine/%@/%@/%@_%06d_gtFine_labelIds.png", split, city.lastPathComponent, name, frame))
        }
        let labelled = labels.indices.filter { Layout.exists(labels[$0]) }
        guard let last = labelled.last else { continue }
        let annotated = labelled.first { index in
          Layout.exists(root.appendingPathComponent(
            String(format: "leftImg8bit/%@/%@/%@_%06d_leftImg8bit.png", split, city.lastPathComponent, name, ordered[index].0)))
        } ?? last
        snippets.append(Snippet(name: name, frames: ordered.map(\.1), annotated: annotated, label: labels[annotated],
                                labelFiles: Dictionary(uniqueKeysWithValues: labelled.map { ($0, labels[$0]) })))
      }
    }
    guard !snippets.isEmpty else {
      throw DataError("\(sequences.path): no snippet with an annotated frame; Cityscapes sequences are laid out as:\n\(cityscapesLayout)")
    }
    return VideoSnippets(root: root, split: split, snippets: snippets, colormap: .cityscapes, labelMapping: .cityscapes)
  }

  public static let camvidLayout = """
      <root>/<split>/<sequence>/<prefix>_<frame>.png        every frame (30 fps), e.g. val/16E5_7959_8159/16E5_007959.png
      <root>/<split>annot/<sequence>/<prefix>_<frame>.png   every 30th frame, SegNet's class indices (11 = unlabelled)
    """

  /// The frames before an annotated CamVid frame that form its snippet (the TensorFlow DVSNet variant pairs
  /// each annotated frame with the 29 before it).
  public static let camvidSnippetLength = 30

  /// CamVid at 30 fps as the TensorFlow DVSNet variant lays it out: one snippet per annotated frame, made of
  /// that frame and the frames before it back to the previous annotated frame, at most
  /// `camvidSnippetLength` in all (labels as for `SegmentationDataset.camvid`).
  public static func camvid(root: URL, split: String) throws -> VideoSnippets {
    let videos = root.appendingPathComponent(split), annotations = root.appendingPathComponent(split + "annot")
    for folder in [videos, annotations] where !Layout.isDirectory(folder) {
      throw DataError("\(folder.path): no such folder (split '\(split)'); CamVid at 30 fps is laid out as:\n\(camvidLayout)")
    }
    var snippets: [Snippet] = []
    for sequence in try Layout.contents(videos) where Layout.isDirectory(sequence) {
      var frames: [Int: URL] = [:]
      for file in try Layout.contents(sequence) where file.pathExtension.lowercased() == "png" {
        // <prefix>_<frame>.png: the frame number is the last "_" field.
        guard let field = file.deletingPathExtension().lastPathComponent.split(separator: "_").last,
              let frame = Int(field), frame >= 0 else {
          throw DataError("\(file.path): not named <prefix>_<frame>.png")
        }
        if let other = frames[frame] {
          throw DataError("\(file.path) and \(other.lastPathComponent): two files for frame \(frame)")
        }
        frames[frame] = file
      }
      let labelFolder = annotations.appendingPathComponent(sequence.lastPathComponent)
      let annotated = frames.sorted { $0.key < $1.key }.filter {
        Layout.exists(labelFolder.appendingPathComponent($0.value.lastPathComponent))
      }
      var previous: Int?
      for (frame, file) in annotated {
        let first = max(frame - camvidSnippetLength + 1, (previous ?? -1) + 1)
        previous = frame
        // Only consecutive frames are a video: a missing frame starts the snippet after it.
        var members: [URL] = []
        for number in stride(from: frame, through: first, by: -1) {
          guard let member = frames[number] else { break }
          members.insert(member, at: 0)
        }
        snippets.append(Snippet(name: "\(sequence.lastPathComponent)/\(file.deletingPathExtension().lastPathComponent)",
                                frames: members, annotated: members.count - 1,
                                label: labelFolder.appendingPathComponent(file.lastPathComponent)))
      }
    }
    guard !snippets.isEmpty else {
      throw DataError("\(videos.path): no annotated frame in \(annotations.lastPathComponent)/; CamVid at 30 fps is laid out as:\n\(camvidLayout)")
    }
    return VideoSnippets(root: root, split: split, snippets: snippets, colormap: .camvid, labelMapping: .camvid)
  }

  /// The video datasets by name: cityscapes (`leftImg8bit_sequence`) or camvid (30 fps).
  public static let datasetNames = ["cityscapes", "camvid"]

  public static func named(_ dataset: String, root: URL, split: String) throws -> VideoSnippets {
    switch dataset {
    case "cityscapes": return try cityscapes(root: root, split: split)
    case "camvid": return try camvid(root: root, split: split)
    default: throw DataError("'\(dataset)' is not a video dataset (\(datasetNames.joined(separator: ", ")))")
    }
  }

  /// The annotated frame's label, mapped to train ids (invalid values are an error naming the file).
  public func label(of snippet: Snippet) throws -> Image {
    try label(file: snippet.label)
  }

  /// The label of frame `index` of `snippet`, which must be labelled.
  public func label(at index: Int, of snippet: Snippet) throws -> Image {
    guard let file = snippet.labelFiles[index] else { throw DataError("\(snippet.name): frame \(index) has no label") }
    return try label(file: file)
  }

  private func label(file: URL) throws -> Image {
    let (label, invalid) = labelMapping.apply(try ImageIO.readLabel(file))
    guard invalid.isEmpty else {
      throw DataError("\(file.path): label \(LabelMapping.describe(invalid)) not valid for this dataset")
    }
    return label
  }
}

/// Frame pairs of video snippets for training the flow path: every frame of every
/// snippet with each earlier frame up to `maximumDistance` before it as its key. A
/// sample's image is the current frame, `frames[.key]` the key frame; no labels.
public struct KeyFramePairs: SampleSource {
  public let snippets: VideoSnippets
  public let maximumDistance: Int
  let items: [(snippet: Int, current: Int, key: Int)]

  public init(_ snippets: VideoSnippets, maximumDistance: Int) throws {
    guard (1...1000).contains(maximumDistance) else {
      throw DataError("key-frame pairs up to \(maximumDistance) frames apart: the distance must be 1 to 1000")
    }
    self.snippets = snippets
    self.maximumDistance = maximumDistance
    var items: [(Int, Int, Int)] = []
    for (index, snippet) in snippets.snippets.enumerated() {
      for current in 0..<snippet.frames.count {
        for distance in 1...maximumDistance where current - distance >= 0 { items.append((index, current, current - distance)) }
      }
    }
    self.items = items
  }

  public var count: Int { items.count }

  public func loadSample(at index: Int) throws -> Sample {
    let item = items[index]
    let snippet = snippets.snippets[item.snippet]
    let current = try ImageIO.read(snippet.frames[item.current]), key = try ImageIO.read(snippet.frames[item.key])
    guard current.width == key.width, current.height == key.height else {
      throw DataError("\(snippet.frames[item.key].path): \(key.width)×\(key.height), but the snippet's frame \(item.current) is \(current.width)×\(current.height)")
    }
    return Sample(name: "\(snippet.name)/\(item.current)-\(item.key)", image: current, label: nil, frames: [.key: key])
  }
}
