import Foundation

/// DAVIS frame sizes: 480p, or full resolution (DAVIS 2016's `1080p`, DAVIS 2017's `Full-Resolution`).
public enum DAVISResolution: String, Sendable {
  case p480 = "480p", full

  func folder(_ format: DatasetFormat) -> String {
    switch self {
    case .p480: return "480p"
    case .full: return format == .davis2016 ? "1080p" : "Full-Resolution"
    }
  }
}

/// A named sequence of frames, in order.
public struct VideoSequence: Sendable {
  public var name: String
  public var frames: [SampleFiles]
}

/// One split of a video segmentation dataset, as sequences of frames.
public struct VideoDataset: Sendable {
  public let sequences: [VideoSequence]
  /// Every frame of every sequence as one image dataset (names "sequence/frame").
  public let frames: SegmentationDataset

  /// DAVIS 2016: binary masks (0 background, 255 object → class 1); `split` is train or val,
  /// read from `ImageSets/<resolution>/<split>.txt` ("image annotation" pairs).
  public static func davis2016(root: URL, split: String, resolution: DAVISResolution = .p480) throws -> VideoDataset {
    try Layout.requireDirectory(root, .davis2016)
    let list = root.appendingPathComponent("ImageSets/\(resolution.folder(.davis2016))/\(split).txt")
    var sequences: [VideoSequence] = []
    for (number, line) in try Layout.lines(list, .davis2016).enumerated() {
      let parts = line.split(whereSeparator: \.isWhitespace).map { String($0.drop { $0 == "/" }) }
      guard parts.count == 2 else {
        throw DataError("\(list.path): line \(number + 1) is not \"<image> <annotation>\": \(line)")
      }
      for part in parts { _ = try Layout.relativePath(part, in: list, line: number + 1) }
      let image = root.appendingPathComponent(parts[0])
      let sequence = image.deletingLastPathComponent().lastPathComponent
      if sequences.last?.name != sequence { sequences.append(VideoSequence(name: sequence, frames: [])) }
      let stem = image.deletingPathExtension().lastPathComponent
      sequences[sequences.count - 1].frames.append(
        SampleFiles(name: "\(sequence)/\(stem)", image: image, label: .png(root.appendingPathComponent(parts[1])),
                    sequence: sequence, frameIndex: sequences[sequences.count - 1].frames.count))
    }
    let colormap = try Colormap(name: "davis2016", classNames: ["background", "object"], colors: [(0, 0, 0), (255, 255, 255)])
    return VideoDataset(sequences: sequences, format: .davis2016, root: root, split: split, colormap: colormap,
                        labelMapping: .davis2016, openEnded: false)
  }

  /// DAVIS 2017: palette masks of object ids (0 background, k object k, 255 void); `split`
  /// names `ImageSets/2017/<split>.txt` (train, val, test-dev…), one sequence per line. Frames
  /// are the sequence folder's JPEGs in name order; each takes the PNG of the same name.
  public static func davis2017(root: URL, split: String, resolution: DAVISResolution = .p480) throws -> VideoDataset {
    try Layout.requireDirectory(root, .davis2017)
    let folder = resolution.folder(.davis2017)
    let list = root.appendingPathComponent("ImageSets/2017/\(split).txt")
    let names = try Layout.lines(list, .davis2017).enumerated().map { try Layout.plainName($1, in: list, line: $0 + 1) }
    let sequences = try names.map { name -> VideoSequence in
      let images = root.appendingPathComponent("JPEGImages/\(folder)/\(name)")
      try Layout.requireDirectory(images, .davis2017, what: "sequence '\(name)'")
      let frames = try Layout.contents(images).filter { $0.pathExtension.lowercased() == "jpg" }.enumerated().map { index, image in
        let stem = image.deletingPathExtension().lastPathComponent
        return SampleFiles(name: "\(name)/\(stem)", image: image,
                           label: .png(root.appendingPathComponent("Annotations/\(folder)/\(name)/\(stem).png")),
                           sequence: name, frameIndex: index)
      }
      return VideoSequence(name: name, frames: frames)
    }
    let colormap = try Colormap(name: "davis2017", classNames: ["background"], colors: [])
    return VideoDataset(sequences: sequences, format: .davis2017, root: root, split: split, colormap: colormap,
                        labelMapping: .identity(classes: Int(voidLabel)), openEnded: true)
  }

  init(
    sequences: [VideoSequence], format: DatasetFormat, root: URL, split: String, colormap: Colormap,
    labelMapping: LabelMapping, openEnded: Bool
  ) {
    self.sequences = sequences
    frames = SegmentationDataset(format: format, root: root, split: split, files: sequences.flatMap(\.frames),
                                 colormap: colormap, labelMapping: labelMapping, openEndedClasses: openEnded)
  }

  /// Frames paired with the previous frame's mask, for mask-propagation training (MaskRNN):
  /// sample i is frame i with `masks[.previous]` the label of frame i − 1 of the same sequence
  /// (the first frame of a sequence gets its own mask).
  public var withPreviousMasks: PreviousMaskSource { PreviousMaskSource(frames: frames) }
}

/// A dataset's frames with the previous frame's label attached (see `VideoDataset.withPreviousMasks`).
public struct PreviousMaskSource: SampleSource {
  public let frames: SegmentationDataset

  public var count: Int { frames.count }

  public func loadSample(at index: Int) throws -> Sample {
    var sample = try frames.loadSample(at: index)
    let files = frames.files[index]
    let previous = index > 0 && (files.frameIndex ?? 0) > 0 && frames.files[index - 1].sequence == files.sequence
    sample.masks[.previous] = previous ? try frames.label(at: index - 1) : sample.label
    return sample
  }
}
