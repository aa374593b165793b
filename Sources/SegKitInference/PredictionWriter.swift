import Foundation

/// The files written for each segmented image or video frame, and how they look:
/// the label map (palette PNG whose indices are the labels, or plain gray ids),
/// optionally the colourised mask and the mask blended over the image.
public struct PredictionWriter {
  public var palette: Colormap
  /// Plain 8-bit gray ids instead of a palette PNG.
  public var raw = false
  public var color = false
  public var overlay = false
  /// Opacity of the mask in overlays, in [0, 1].
  public var alpha = 0.5

  public init(palette: Colormap, raw: Bool = false, color: Bool = false, overlay: Bool = false, alpha: Double = 0.5) throws {
    guard (0...1).contains(alpha) else { throw InferenceError("overlay opacity must be in [0, 1], got \(alpha)") }
    self.palette = palette
    self.raw = raw
    self.color = color
    self.overlay = overlay
    self.alpha = alpha
  }

  /// Segments each image into `folder`, reporting each label map written; one bad file
  /// does not stop the others: it is reported through `failed` and returned.
  public func segmentImages(
    _ urls: [URL], with segmenter: ImageSegmenter, shorterSide: Int?, into folder: URL, admit: (URL) throws -> Void = { _ in },
    written: (URL) -> Void, failed: (Error) -> Void
  ) throws -> [String] {
    var failures: [String] = []
    for url in urls {
      do {
        try admit(url)
        let image = try ImageIO.read(url)
        written(try write(image: image, labels: segmenter.labels(image, shorterSide: shorterSide), stem: PredictionInput.stem(url),
                          into: folder))
      } catch {
        failed(error)
        failures.append("\(error)")
      }
    }
    return failures
  }

  /// Writes `<stem>.png` (and `<stem>_color.png`, `<stem>_overlay.jpg`) into
  /// `folder`; returns the label map's URL.
  @discardableResult
  public func write(image: Image, labels: Image, stem: String, into folder: URL) throws -> URL {
    let labelsURL = folder.appendingPathComponent("\(stem).png")
    try ImageIO.writePNG(labels, to: labelsURL, palette: raw ? nil : palette)
    if color {
      try ImageIO.writePNG(try palette.colorize(labels), to: folder.appendingPathComponent("\(stem)_color.png"))
    }
    if overlay {
      try ImageIO.writeJPEG(try blend(image: image, labels: labels), to: folder.appendingPathComponent("\(stem)_overlay.jpg"))
    }
    return labelsURL
  }

  /// (1 − alpha) · image + alpha · mask colour, per pixel, at the labels' size.
  public func blend(image: Image, labels: Image) throws -> Image {
    let mask = try palette.colorize(labels)
    var out = image.rgb()
    if out.width != mask.width || out.height != mask.height {
      let size = Size2(mask.height, mask.width)
      out = try Image(tensor: try out.tensor().unsqueeze(0).interpolate(size: size, mode: .bilinear).squeeze(dim: 0))
    }
    for i in out.pixels.indices {
      out.pixels[i] = UInt8(((1 - alpha) * Double(out.pixels[i]) + alpha * Double(mask.pixels[i])).rounded())
    }
    return out
  }

  /// Where `segmentVideo` writes the overlay video of `video`: `<stem>_overlay.mp4` in `folder`.
  public static func videoURL(for video: URL, in folder: URL) -> URL {
    folder.appendingPathComponent("\(video.deletingPathExtension().lastPathComponent)_overlay.mp4")
  }

  /// The first of `segmentVideo`'s outputs for `video` already in `folder` (the overlay
  /// video, or with `frames` a non-empty `<stem>/`), which only `replacing` may overwrite.
  public static func earlierResult(of video: URL, in folder: URL, frames: Bool) -> URL? {
    let overlay = videoURL(for: video, in: folder)
    if FileManager.default.fileExists(atPath: overlay.path) { return overlay }
    let frameFolder = folder.appendingPathComponent(video.deletingPathExtension().lastPathComponent)
    let contents = (try? FileManager.default.contentsOfDirectory(atPath: frameFolder.path)) ?? []
    return frames && !contents.isEmpty ? frameFolder : nil
  }

  /// Segments every frame of a video with `segmenter` (started on the first frame,
  /// with `firstMask` for video object segmentation) into `<stem>_overlay.mp4` in
  /// `folder`, and with `frames` each frame's files into `<stem>/`. A failure part-way
  /// still finishes the video with the frames done so far, then rethrows; so does
  /// `shouldStop` (asked after each frame; the result says `stopped`). `annotate`
  /// draws on each blended frame (given its labels) before it is written.
  public func segmentVideo(
    _ url: URL, with segmenter: any SequenceSegmenter, firstMask: Image? = nil, into folder: URL, frames: Bool,
    replacing: Bool = false, annotate: ((inout Image, Image) throws -> Void)? = nil, shouldStop: () -> Bool = { false }
  ) throws -> (video: URL, frames: Int, stopped: Bool) {
    let stem = url.deletingPathExtension().lastPathComponent
    let videoURL = Self.videoURL(for: url, in: folder)
    if !replacing, let earlier = Self.earlierResult(of: url, in: folder, frames: frames) {
      throw InferenceError("\(earlier.path) exists: an earlier result is kept unless told to replace it")
    }
    let reader = try VideoReader(url)
    defer { reader.close() }
    let frameFolder = folder.appendingPathComponent(stem)
    if frames {
      do {
        try FileManager.default.createDirectory(at: frameFolder, withIntermediateDirectories: true)
      } catch {
        throw InferenceError("\(frameFolder.path): cannot create the folder (\(error.localizedDescription))")
      }
    }
    var writer: VideoWriter?
    var stopped = false
    do {
      while !stopped, let frame = try reader.next() {
        let labels = reader.position == 1
          ? try segmenter.start(firstFrame: frame, mask: firstMask) : try segmenter.next(frame)
        if writer == nil {
          writer = try VideoWriter(url: videoURL, width: labels.width, height: labels.height,
                                   fps: reader.fps > 0 ? reader.fps : 25)
        }
        var shown = try blend(image: frame, labels: labels)
        try annotate?(&shown, labels)
        try writer?.write(shown)
        if frames { try write(image: frame, labels: labels, stem: String(format: "%06d", reader.position - 1), into: frameFolder) }
        stopped = shouldStop()
      }
    } catch {
      try? writer?.finish()
      throw error
    }
    guard let writer else { throw InferenceError("\(url.path): the video has no frames") }
    try writer.finish()
    return (videoURL, writer.frameCount, stopped)
  }
}
