import Foundation
import SegKitData
import SegKitInference
import ZIPFoundation

/// One video being segmented interactively: its frames in the session's own folder
/// (`frames/`), the masks a person gave (`annotations/T.png`, label maps whose values are
/// object ids) and the masks propagation produced (`masks/T.png`). Nothing in it is named
/// by the client: files are numbered by the service. Access goes through `SessionStore`'s lock.
final class VideoSession: @unchecked Sendable {
  let id: String
  let folder: URL
  let frameFiles: [String]
  let width: Int
  let height: Int
  let fps: Double
  var annotated: Set<Int> = []
  var segmented: Set<Int> = []
  var lastUsed = Date()
  /// The propagation running, if any; setting `cancelled` stops it after its current frame.
  var propagation: Propagation?

  final class Propagation: @unchecked Sendable {
    private let lock = NSLock()
    private var stop = false
    var cancelled: Bool { lock.withLock { stop } }
    func cancel() { lock.withLock { stop = true } }
  }

  var frameCount: Int { frameFiles.count }
  var framesFolder: URL { folder.appendingPathComponent("frames") }
  func frameURL(_ t: Int) -> URL { framesFolder.appendingPathComponent(frameFiles[t]) }
  func annotationURL(_ t: Int) -> URL { folder.appendingPathComponent("annotations/\(String(format: "%05d", t)).png") }
  func maskURL(_ t: Int) -> URL { folder.appendingPathComponent("masks/\(String(format: "%05d", t)).png") }

  init(id: String, folder: URL, frameFiles: [String], width: Int, height: Int, fps: Double) {
    (self.id, self.folder, self.frameFiles, self.width, self.height, self.fps) = (id, folder, frameFiles, width, height, fps)
  }

  /// The mask frame `t` starts from: the person's, else the propagated one.
  func startingMask(_ t: Int) throws -> Image? {
    if annotated.contains(t) { return try ImageIO.readLabel(annotationURL(t)) }
    if segmented.contains(t) { return try ImageIO.readLabel(maskURL(t)) }
    return nil
  }

  /// Frame `t`'s current mask: the person's where given, else the propagated one, else empty.
  func currentMask(_ t: Int) throws -> Image {
    try startingMask(t) ?? Image(width: width, height: height, channels: 1)
  }
}

/// How a session's frames arrive: a video file, or a zip of JPEG or PNG frames (in name order).
enum SessionUpload {
  /// Unpacks `body` into `folder/frames`, refusing past the caps; returns the frame files, size and rate.
  static func unpack(_ body: Data, filename: String?, into folder: URL, settings: ServiceSettings) throws
    -> (files: [String], width: Int, height: Int, fps: Double)
  {
    let frames = folder.appendingPathComponent("frames")
    try FileManager.default.createDirectory(at: frames, withIntermediateDirectories: true)
    if body.starts(with: [0x50, 0x4B, 0x03, 0x04]) || body.starts(with: [0x50, 0x4B, 0x05, 0x06]) {
      return try unzip(body, into: frames, settings: settings)
    }
    return try decodeVideo(body, filename: filename, into: folder, frames: frames, settings: settings)
  }

  private static func unzip(_ body: Data, into frames: URL, settings: ServiceSettings) throws
    -> (files: [String], width: Int, height: Int, fps: Double)
  {
    let archive: Archive
    do { archive = try Archive(data: body, accessMode: .read) } catch {
      throw ServiceError.unprocessable("the body starts as a zip but is not a readable zip archive")
    }
    let entries = archive.filter { entry in
      let name = (entry.path as NSString).lastPathComponent.lowercased()
      return entry.type == .file && !entry.path.contains("__MACOSX") && !name.hasPrefix(".")
        && ["jpg", "jpeg", "png"].contains((name as NSString).pathExtension)
    }.sorted { $0.path.localizedStandardCompare($1.path) == .orderedAscending }
    guard !entries.isEmpty else { throw ServiceError.unprocessable("the zip holds no JPEG or PNG frames") }
    guard entries.count <= settings.maxFrames else {
      throw ServiceError.tooLarge("the zip holds \(entries.count) frames, over --max-frames \(settings.maxFrames)", cap: "max-frames")
    }
    var files: [String] = []
    var total = 0
    var size: (width: Int, height: Int)?
    for (t, entry) in entries.enumerated() {
      var data = Data()
      do {
        // Counted as it inflates: the sizes a zip declares may lie.
        _ = try archive.extract(entry, skipCRC32: false) { chunk in
          total += chunk.count
          guard total <= settings.maxSessionBytes else { throw SessionCap.bytes }
          data.append(chunk)
        }
      } catch SessionCap.bytes {
        throw ServiceError.tooLarge("the frames unpack to more than --max-session-bytes \(settings.maxSessionBytes)", cap: "max-session-bytes")
      } catch {
        throw ServiceError.unprocessable("the zip's entry \(t + 1) cannot be read: \(error)")
      }
      let name = "entry \(t + 1) (\((entry.path as NSString).lastPathComponent))"
      let frameSize = try checkedSize(data, name: name, settings: settings)
      if let size, size != frameSize {
        throw ServiceError.unprocessable("\(name) is \(frameSize.width)×\(frameSize.height), the first frame \(size.width)×\(size.height): a video keeps one size")
      }
      size = frameSize
      let isJPEG = data.starts(with: [0xFF, 0xD8])
      let file = String(format: "%05d", t) + (isJPEG ? ".jpg" : ".png")
      do { _ = try ImageIO.decode(data, name: name) } catch { throw ServiceError.unprocessable("\(error)") }
      try AtomicFile.write(data, to: frames.appendingPathComponent(file))
      files.append(file)
    }
    return (files, size!.width, size!.height, 24)
  }

  private static func decodeVideo(_ body: Data, filename: String?, into folder: URL, frames: URL, settings: ServiceSettings) throws
    -> (files: [String], width: Int, height: Int, fps: Double)
  {
    // ffmpeg reads the upload from the session's folder under a name of the service's.
    let ext = filename.map { ($0 as NSString).pathExtension.lowercased() }.flatMap { PredictionInput.videoExtensions.contains($0) ? $0 : nil } ?? "mp4"
    let upload = folder.appendingPathComponent("upload.\(ext)")
    try body.write(to: upload)
    defer { try? FileManager.default.removeItem(at: upload) }
    let reader = try openVideo(upload, settings: settings, notAVideo: "the body is neither a zip of frames nor a video ffmpeg can read")
    defer { reader.close() }
    var files: [String] = []
    var total = 0
    while let frame = try reader.next() {
      guard files.count < settings.maxFrames else {
        throw ServiceError.tooLarge("the video has more than --max-frames \(settings.maxFrames) frames", cap: "max-frames")
      }
      let data = try ImageIO.jpegData(frame, quality: 95)
      total += data.count
      guard total <= settings.maxSessionBytes else {
        throw ServiceError.tooLarge("the frames take more than --max-session-bytes \(settings.maxSessionBytes)", cap: "max-session-bytes")
      }
      let file = String(format: "%05d.jpg", files.count)
      try AtomicFile.write(data, to: frames.appendingPathComponent(file))
      files.append(file)
    }
    guard !files.isEmpty else { throw ServiceError.unprocessable("the video has no frames") }
    return (files, reader.width, reader.height, reader.fps > 0 ? reader.fps : 24)
  }

  /// An uploaded video opened by ffmpeg, its frame size and count checked against the caps
  /// before any frame is decoded; `notAVideo` is the error when ffmpeg cannot read it.
  static func openVideo(_ url: URL, settings: ServiceSettings, notAVideo: String) throws -> VideoReader {
    let reader: VideoReader
    do { reader = try VideoReader(url) } catch { throw ServiceError.unprocessable(notAVideo) }
    guard reader.width * reader.height <= settings.maxImagePixels else {
      reader.close()
      throw ServiceError.tooLarge("\(reader.width)×\(reader.height) frames are over --max-image-pixels \(settings.maxImagePixels)", cap: "max-image-pixels")
    }
    guard reader.frameCount <= settings.maxFrames else {
      reader.close()
      throw ServiceError.tooLarge("the video has \(reader.frameCount) frames, over --max-frames \(settings.maxFrames)", cap: "max-frames")
    }
    return reader
  }

  /// The image size from its header, refused past the pixel cap before any decoding.
  static func checkedSize(_ data: Data, name: String, settings: ServiceSettings) throws -> (width: Int, height: Int) {
    let size: (width: Int, height: Int)
    do { size = try ImageIO.size(of: data, name: name) } catch {
      throw ServiceError.unprocessable("\(name) is not a JPEG or PNG image (\(error))")
    }
    guard size.width > 0, size.height > 0, size.width * size.height <= settings.maxImagePixels else {
      throw ServiceError.tooLarge("\(name) is \(size.width)×\(size.height) pixels, over --max-image-pixels \(settings.maxImagePixels)", cap: "max-image-pixels")
    }
    return size
  }

  private enum SessionCap: Error { case bytes }
}
