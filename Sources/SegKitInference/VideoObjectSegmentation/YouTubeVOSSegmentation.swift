import Foundation

/// Semi-supervised video object segmentation of YouTube-VOS videos, whose objects may
/// first appear on any frame: each annotated frame's mask is given to the segmenter
/// (its new objects join those followed). Writes YouTube-VOS's results layout,
/// `<out>/Annotations/<video>/<frame>.png` (palette object ids) for every frame; frames
/// before the first annotation are background.
public struct YouTubeVOSSegmentation {
  public let makeSegmenter: (VideoSequence) throws -> any MaskAcceptingSegmenter

  public init(makeSegmenter: @escaping (VideoSequence) throws -> any MaskAcceptingSegmenter) {
    self.makeSegmenter = makeSegmenter
  }

  /// The folder a video's results go to.
  public static func folder(of video: VideoSequence, in out: URL) -> URL {
    out.appendingPathComponent("Annotations").appendingPathComponent(video.name)
  }

  /// Segments one video; returns the number of objects followed. `shouldStop` is asked
  /// between frames (then `StoppedOnRequest`; the video's files so far stay).
  @discardableResult
  public func segment(
    _ video: VideoSequence, into out: URL, progress: (Int, Int) -> Void = { _, _ in }, shouldStop: () -> Bool = { false }
  ) throws -> Int {
    let folder = Self.folder(of: video, in: out)
    do {
      try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    } catch {
      throw InferenceError("\(folder.path): cannot create the folder (\(error.localizedDescription))")
    }
    let segmenter = try makeSegmenter(video)
    var started = false
    var objects = Set<UInt8>()
    for (index, frame) in video.frames.enumerated() {
      progress(index, video.frames.count)
      if shouldStop() { throw StoppedOnRequest() }
      let image = try ImageIO.read(frame.image)
      let mask = try frame.label.map { try ImageIO.readLabel($0.url) }
      if let mask, mask.width != image.width || mask.height != image.height {
        throw InferenceError("\(frame.label!.url.path): the mask is \(mask.width)×\(mask.height), its frame \(image.width)×\(image.height)")
      }
      let labels: Image
      switch (started, mask) {
      case (false, nil): labels = Image(width: image.width, height: image.height, channels: 1)
      case (false, let mask?):
        labels = try segmenter.start(firstFrame: image, mask: mask)
        started = true
      case (true, let mask?): labels = try segmenter.next(image, mask: mask)
      case (true, nil): labels = try segmenter.next(image)
      }
      if let mask { objects.formUnion(mask.pixels.filter { $0 != 0 && $0 != voidLabel }) }
      let stem = frame.image.deletingPathExtension().lastPathComponent
      try ImageIO.writePNG(labels, to: folder.appendingPathComponent("\(stem).png"), palette: .pascal)
    }
    progress(video.frames.count, video.frames.count)
    return objects.count
  }
}
