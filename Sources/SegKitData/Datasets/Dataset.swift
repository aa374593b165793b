import Foundation

/// The dataset layouts SegKit reads.
public enum DatasetFormat: String, CaseIterable, Sendable {
  case voc, vocAug = "voc_aug", cityscapes, ade20k, camvid, davis2016, davis2017, youtubeVOS = "youtube_vos", folder

  /// The split read when none is named.
  public var defaultSplit: String {
    switch self {
    case .vocAug: return "train_aug"
    case .folder: return "all"
    default: return "train"
    }
  }

  /// The folders and files a root of this format holds, for error messages.
  public var expectedLayout: String {
    switch self {
    case .voc:
      return """
        VOC2012/ (or VOCdevkit/ holding it)
          JPEGImages/<id>.jpg
          SegmentationClass/<id>.png        palette PNG: 0-20 classes, 255 void
          ImageSets/Segmentation/{train,val,trainval}.txt
        """
    case .vocAug:
      return """
        ROOT/
          VOC2012/ or VOCdevkit/VOC2012/    the Pascal VOC 2012 layout (JPEGImages, SegmentationClass, ImageSets)
          benchmark_RELEASE/dataset/ or SBD/dataset/ or dataset/
            cls/<id>.mat                    MATLAB v5, label map in GTcls.Segmentation
            img/<id>.jpg                    (used when VOC lacks the image)
            {train,val}.txt
        """
    case .cityscapes:
      return """
        ROOT/
          leftImg8bit/{train,val,test}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
          gtFine/{train,val,test}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
        """
    case .ade20k:
      return """
        ADEChallengeData2016/ (or a folder holding it)
          images/{training,validation}/<name>.jpg
          annotations/{training,validation}/<name>.png   0 other (void), 1-150 classes
        """
    case .camvid:
      return """
        ROOT/ (SegNet's CamVid)
          {train,val,test}.txt              lines "<image path> <annotation path>"
          train/, trainannot/, val/, valannot/, test/, testannot/   *.png, annotations 0-10, 11 unlabelled
        """
    case .davis2016:
      return """
        ROOT/ (DAVIS 2016)
          JPEGImages/{480p,1080p}/<sequence>/<frame>.jpg
          Annotations/{480p,1080p}/<sequence>/<frame>.png   0 background, 255 object
          ImageSets/{480p,1080p}/{train,val}.txt             lines "<image path> <annotation path>"
        """
    case .davis2017:
      return """
        ROOT/ (DAVIS 2017)
          JPEGImages/{480p,Full-Resolution}/<sequence>/<frame>.jpg
          Annotations/{480p,Full-Resolution}/<sequence>/<frame>.png   palette PNG: 0 background, k object k, 255 void
          ImageSets/2017/{train,val}.txt                            one sequence name per line
        """
    case .youtubeVOS:
      return """
        ROOT/ (a YouTube-VOS split: train/, valid/, …)
          JPEGImages/<video>/<frame>.jpg
          Annotations/<video>/<frame>.png   palette PNG: 0 background, k object k (valid: where an object first appears)
          meta.json                         {"videos": {<video>: {"objects": {<id>: {"category": …, "frames": [<frame>, …]}}}}}
        """
    case .folder:
      return """
        ROOT/
          images/<stem>.{jpg,jpeg,png}
          masks/<stem>.png                  class indices, 255 void
          classes.txt                       (optional) one class per line: "name" or "name R G B"
          splits/<split>.txt or <split>.txt (optional) one stem per line
        """
    }
  }
}

/// How raw label values of a dataset's files become training ids.
public struct LabelMapping: Sendable, Equatable {
  /// For each raw value 0–255: its id (a class index or `voidLabel`), or -1 when the value is not valid.
  public let table: [Int16]

  public init(table: [Int16]) {
    precondition(table.count == 256, "a label mapping has one entry per 8-bit value")
    self.table = table
  }

  /// Values 0..<classes are classes, `void` is void, anything else is invalid.
  public static func identity(classes: Int, void: UInt8 = voidLabel) -> LabelMapping {
    LabelMapping(table: (0..<256).map { $0 < classes ? Int16($0) : ($0 == Int(void) ? Int16(voidLabel) : -1) })
  }

  /// Cityscapes: label ids 0–33 of cityscapesScripts' labels.py to the 19 train ids, the rest void;
  /// 255 (license plate's id −1 stored in 8 bits) is void too, 34–254 are invalid.
  public static let cityscapes: LabelMapping = {
    let trainIDs: [Int: Int16] = [
      7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
      26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
    ]
    return LabelMapping(table: (0..<256).map { $0 <= 33 || $0 == 255 ? trainIDs[$0] ?? Int16(voidLabel) : -1 })
  }()

  /// ADE20K SceneParsing: 0 ("other") is void and 1–150 become 0–149, as mmsegmentation's
  /// `reduce_zero_label` and the benchmark's own evaluation (which ignores 0) do.
  public static let ade20k = LabelMapping(table: (0..<256).map { $0 == 0 ? Int16(voidLabel) : ($0 <= 150 ? Int16($0 - 1) : -1) })

  /// SegNet's CamVid: 0–10 classes, 11 (unlabelled) void.
  public static let camvid = LabelMapping(table: (0..<256).map { $0 <= 10 ? Int16($0) : ($0 == 11 ? Int16(voidLabel) : -1) })

  /// DAVIS 2016: 0 background, 255 object (class 1); anything else is invalid.
  public static let davis2016 = LabelMapping(table: (0..<256).map { $0 == 0 ? 0 : ($0 == 255 ? 1 : -1) })

  /// The mapped label map and how many pixels held each invalid raw value.
  public func apply(_ raw: Image) -> (label: Image, invalid: [UInt8: Int]) {
    var label = raw
    var invalid: [UInt8: Int] = [:]
    table.withUnsafeBufferPointer { table in
      label.pixels.withUnsafeMutableBufferPointer { pixels in
        for i in pixels.indices {
          let id = table[Int(pixels[i])]
          if id < 0 {
            invalid[pixels[i], default: 0] += 1
            pixels[i] = voidLabel
          } else {
            pixels[i] = UInt8(id)
          }
        }
      }
    }
    return (label, invalid)
  }
}

/// The label value every SegKit dataset uses for void pixels (ignored by losses and metrics).
public let voidLabel: UInt8 = 255

/// The files of one sample.
public struct SampleFiles: Sendable, Hashable {
  public enum LabelSource: Sendable, Hashable {
    case png(URL)
    /// A MATLAB v5 file and the struct field holding the label map (SBD: GTcls.Segmentation).
    case matlab(URL, variable: String, field: String)

    public var url: URL {
      switch self {
      case .png(let url), .matlab(let url, _, _): return url
      }
    }
  }

  /// An identifier unique within the split (an id, a path stem, or "sequence/frame").
  public var name: String
  public var image: URL
  /// Nil for unlabelled splits (e.g. Pascal VOC's test set).
  public var label: LabelSource?
  /// For video frames: the sequence and the frame's index in it.
  public var sequence: String?
  public var frameIndex: Int?

  public init(name: String, image: URL, label: LabelSource?, sequence: String? = nil, frameIndex: Int? = nil) {
    self.name = name
    self.image = image
    self.label = label
    self.sequence = sequence
    self.frameIndex = frameIndex
  }
}

/// Anything the loader can draw samples from: a dataset, or a wrapper that adds keyed
/// extras (previous masks, neighbouring frames, optical flow).
public protocol SampleSource: Sendable {
  var count: Int { get }
  /// Decodes sample `index`; errors name the file and the problem.
  func loadSample(at index: Int) throws -> Sample
}

/// A source whose samples are drawn afresh each epoch (which frames of a video make a
/// clip, how a still image moves from frame to frame), from a seed the loader derives
/// like the augmentation's, so that a resumed run draws what an uninterrupted one would.
public protocol DrawnSampleSource: SampleSource {
  /// Sample `index` as drawn in `epoch` from `seed`; `loadSample(at:)` is epoch 0's draw with seed 0.
  func loadSample(at index: Int, epoch: Int, seed: UInt64) throws -> Sample
}

extension DrawnSampleSource {
  public func loadSample(at index: Int) throws -> Sample { try loadSample(at: index, epoch: 0, seed: 0) }
}

/// One split of a segmentation dataset: its files, classes and label mapping.
public struct SegmentationDataset: SampleSource {
  public let format: DatasetFormat
  public let root: URL
  public let split: String
  public let files: [SampleFiles]
  public let colormap: Colormap
  public let labelMapping: LabelMapping
  /// Whether ids beyond `classNames` are valid (DAVIS 2017 object ids, folders without a class list).
  public let openEndedClasses: Bool

  public init(
    format: DatasetFormat, root: URL, split: String, files: [SampleFiles], colormap: Colormap,
    labelMapping: LabelMapping, openEndedClasses: Bool = false
  ) {
    self.format = format
    self.root = root
    self.split = split
    self.files = files
    self.colormap = colormap
    self.labelMapping = labelMapping
    self.openEndedClasses = openEndedClasses
  }

  public var count: Int { files.count }
  public var classNames: [String] { colormap.classNames }

  /// Opens `split` of the dataset at `root` in `format`.
  public static func open(_ format: DatasetFormat, root: URL, split: String? = nil) throws -> SegmentationDataset {
    let split = split ?? format.defaultSplit
    switch format {
    case .voc: return try voc(root: root, split: split)
    case .vocAug: return try vocAug(root: root, split: split)
    case .cityscapes: return try cityscapes(root: root, split: split)
    case .ade20k: return try ade20k(root: root, split: split)
    case .camvid: return try camvid(root: root, split: split)
    case .davis2016: return try VideoDataset.davis2016(root: root, split: split).frames
    case .davis2017: return try VideoDataset.davis2017(root: root, split: split).frames
    case .youtubeVOS: return try VideoDataset.youTubeVOS(root: root).dataset.frames
    case .folder: return try folder(root: root, split: split == "all" ? nil : split)
    }
  }

  /// The label map as stored, before mapping (palette indices, gray values, or the .mat matrix).
  public func rawLabel(at index: Int) throws -> Image? {
    switch files[index].label {
    case nil: return nil
    case .png(let url): return try ImageIO.readLabel(url)
    case .matlab(let url, let variable, let field): return try MATFile.labelMap(url, variable: variable, field: field)
    }
  }

  /// The label ids of sample `index`; a value outside the classes that is not void throws.
  public func label(at index: Int) throws -> Image? {
    guard let raw = try rawLabel(at: index) else { return nil }
    let (label, invalid) = labelMapping.apply(raw)
    if !invalid.isEmpty, let url = files[index].label?.url {
      throw DataError("\(url.path): \(LabelMapping.describe(invalid)) outside the \(format.rawValue) classes and not void")
    }
    return label
  }

  public func loadSample(at index: Int) throws -> Sample {
    let files = self.files[index]
    let image = try ImageIO.read(files.image)
    let label = try self.label(at: index)
    if let label, label.width != image.width || label.height != image.height {
      throw DataError(
        "\(files.label!.url.path): label is \(label.width)×\(label.height) but its image \(files.image.lastPathComponent) is \(image.width)×\(image.height)")
    }
    return Sample(name: files.name, image: image, label: label)
  }
}

extension LabelMapping {
  /// "values 21 (12 px), 40 (3 px)".
  static func describe(_ invalid: [UInt8: Int]) -> String {
    let parts = invalid.keys.sorted().prefix(8).map { "\($0) (\(invalid[$0]!) px)" }
    return (invalid.count == 1 ? "value " : "values ") + parts.joined(separator: ", ") + (invalid.count > 8 ? ", …" : "")
  }
}

// MARK: - Helpers shared by the readers

enum Layout {
  static func isDirectory(_ url: URL) -> Bool {
    var directory: ObjCBool = false
    return FileManager.default.fileExists(atPath: url.path, isDirectory: &directory) && directory.boolValue
  }

  static func exists(_ url: URL) -> Bool { FileManager.default.fileExists(atPath: url.path) }

  /// Fails with the expected layout when `url` is not a folder.
  static func requireDirectory(_ url: URL, _ format: DatasetFormat, what: String? = nil) throws {
    guard isDirectory(url) else {
      throw DataError("\(url.path): no such folder\(what.map { " (\($0))" } ?? ""); a \(format.rawValue) dataset is laid out as:\n\(format.expectedLayout)")
    }
  }

  /// The non-empty, trimmed lines of a list file, or an error naming it.
  static func lines(_ url: URL, _ format: DatasetFormat) throws -> [String] {
    guard exists(url) else {
      throw DataError("\(url.path): split file missing; a \(format.rawValue) dataset is laid out as:\n\(format.expectedLayout)")
    }
    guard let text = try? String(contentsOf: url, encoding: .utf8) else {
      throw DataError("\(url.path): cannot be read as UTF-8 text")
    }
    return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
  }

  /// The lines of a list of ids (VOC's ImageSets), each a plain name (`plainName`).
  static func names(_ url: URL, _ format: DatasetFormat) throws -> [String] {
    try lines(url, format).enumerated().map { try plainName($1, in: url, line: $0 + 1) }
  }

  /// `name` from line `line` of `list` as one plain file or folder name: no separators, not "." or "..".
  static func plainName(_ name: String, in list: URL, line: Int) throws -> String {
    guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\\") else {
      throw DataError("\(list.path): line \(line) names '\(name)', which is not a plain name inside the dataset")
    }
    return name
  }

  /// `path` from line `line` of `list` as a relative path inside the dataset root: no "..".
  static func relativePath(_ path: String, in list: URL, line: Int) throws -> String {
    guard !path.isEmpty, !path.split(separator: "/").contains(".."), !path.contains("\\") else {
      throw DataError("\(list.path): line \(line) names '\(path)', which is not a path inside the dataset")
    }
    return path
  }

  /// The entries of a folder, sorted by name (hidden files skipped).
  static func contents(_ url: URL) throws -> [URL] {
    do {
      return try FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: nil, options: [.skipsHiddenFiles])
        .sorted { $0.lastPathComponent < $1.lastPathComponent }
    } catch {
      throw DataError("\(url.path): cannot list the folder (\(error.localizedDescription))")
    }
  }
}
