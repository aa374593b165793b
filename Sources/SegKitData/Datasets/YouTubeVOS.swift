import Foundation

/// An object of a YouTube-VOS video, as its meta.json lists it.
public struct YouTubeVOSObject: Sendable, Equatable {
  /// Its id: its value in the annotation PNGs.
  public var id: Int
  public var category: String?
  /// The frame (file stem) where it is first annotated.
  public var firstFrame: String

  public init(id: Int, category: String?, firstFrame: String) {
    (self.id, self.category, self.firstFrame) = (id, category, firstFrame)
  }
}

extension VideoDataset {
  /// A YouTube-VOS split at `root` (e.g. `valid/`): frames `JPEGImages/<video>/<frame>.jpg`
  /// in name order, annotations `Annotations/<video>/<frame>.png` (palette object ids)
  /// where they exist (in the validation split, only on the frames where an object
  /// first appears), and `meta.json` naming each video's objects and the frames they
  /// appear in. Returns the videos (a frame's `label` is its annotation, nil where there
  /// is none) and each video's objects. Everything read is checked: names are plain,
  /// ids are 1…254, every object's first frame exists and holds its annotation.
  public static func youTubeVOS(root: URL) throws -> (dataset: VideoDataset, objects: [String: [YouTubeVOSObject]]) {
    try Layout.requireDirectory(root, .youtubeVOS)
    let metaURL = root.appendingPathComponent("meta.json")
    guard Layout.exists(metaURL) else {
      throw DataError("\(metaURL.path): missing; a youtube_vos dataset is laid out as:\n\(DatasetFormat.youtubeVOS.expectedLayout)")
    }
    let meta: YouTubeVOSMeta
    do {
      meta = try JSONDecoder().decode(YouTubeVOSMeta.self, from: Data(contentsOf: metaURL))
    } catch {
      throw DataError("\(metaURL.path): not YouTube-VOS's meta.json ({\"videos\": {video: {\"objects\": {id: {\"frames\": […]}}}}}): \(error)")
    }
    var sequences: [VideoSequence] = []
    var objects: [String: [YouTubeVOSObject]] = [:]
    for (line, name) in meta.videos.keys.sorted().enumerated() {
      _ = try Layout.plainName(name, in: metaURL, line: line + 1)
      let images = root.appendingPathComponent("JPEGImages/\(name)")
      try Layout.requireDirectory(images, .youtubeVOS, what: "video '\(name)' of meta.json")
      let annotations = root.appendingPathComponent("Annotations/\(name)")
      let frames = try Layout.contents(images).filter { $0.pathExtension.lowercased() == "jpg" }.enumerated().map { index, image in
        let stem = image.deletingPathExtension().lastPathComponent
        let label = annotations.appendingPathComponent("\(stem).png")
        return SampleFiles(name: "\(name)/\(stem)", image: image, label: Layout.exists(label) ? .png(label) : nil,
                           sequence: name, frameIndex: index)
      }
      guard !frames.isEmpty else { throw DataError("\(images.path): video '\(name)' has no JPEG frames") }
      let stems = Set(frames.map { $0.image.deletingPathExtension().lastPathComponent })
      var videoObjects: [YouTubeVOSObject] = []
      for (key, object) in meta.videos[name]!.objects {
        guard let id = Int(key), (1...254).contains(id) else {
          throw DataError("\(metaURL.path): video '\(name)' has object '\(key)'; object ids are 1…254")
        }
        guard let first = object.frames.first else { throw DataError("\(metaURL.path): video '\(name)', object \(id) lists no frames") }
        _ = try Layout.plainName(first, in: metaURL, line: line + 1)
        guard stems.contains(first) else {
          throw DataError("\(metaURL.path): video '\(name)', object \(id) first appears in frame '\(first)', which is not in \(images.path)")
        }
        guard Layout.exists(annotations.appendingPathComponent("\(first).png")) else {
          throw DataError("\(annotations.path)/\(first).png: missing; object \(id) of video '\(name)' is first annotated there")
        }
        videoObjects.append(YouTubeVOSObject(id: id, category: object.category, firstFrame: first))
      }
      objects[name] = videoObjects.sorted { $0.id < $1.id }
      sequences.append(VideoSequence(name: name, frames: frames))
    }
    let colormap = try Colormap(name: "youtube_vos", classNames: ["background"], colors: [])
    let dataset = VideoDataset(sequences: sequences, format: .youtubeVOS, root: root, split: root.lastPathComponent,
                               colormap: colormap, labelMapping: .identity(classes: Int(voidLabel)), openEnded: true)
    return (dataset, objects)
  }
}

/// meta.json as YouTube-VOS writes it.
private struct YouTubeVOSMeta: Decodable {
  struct Video: Decodable { let objects: [String: Object] }
  struct Object: Decodable {
    let category: String?
    let frames: [String]
  }
  let videos: [String: Video]
}
