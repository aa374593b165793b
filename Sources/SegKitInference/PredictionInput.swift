import Foundation

/// What `predict` segments: one image, a folder of images (sorted by name) or a video,
/// told apart by what is at the path and its extension.
public enum PredictionInput {
  case image(URL)
  case folder([URL])
  case video(URL)

  public static let videoExtensions: Set<String> = ["mp4", "avi", "mov", "mkv", "webm", "m4v", "mpg", "mpeg", "wmv", "flv", "mxf"]
  public static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]

  /// The input at `url`, checked: a folder must hold images whose outputs do not clash.
  public init(_ url: URL) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
      throw InferenceError("\(url.path): no such file or folder")
    }
    guard isDirectory.boolValue else {
      self = Self.videoExtensions.contains(url.pathExtension.lowercased()) ? .video(url) : .image(url)
      return
    }
    let entries: [URL]
    do {
      entries = try FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: nil, options: [.skipsHiddenFiles])
    } catch {
      throw InferenceError("\(url.path): cannot list the folder (\(error.localizedDescription))")
    }
    let images = entries.filter { Self.imageExtensions.contains($0.pathExtension.lowercased()) }
      .sorted { $0.lastPathComponent < $1.lastPathComponent }
    guard !images.isEmpty else { throw InferenceError("\(url.path): the folder holds no .jpg, .jpeg or .png image") }
    let clashes = Dictionary(grouping: images, by: Self.stem).filter { $0.value.count > 1 }
    if let clash = clashes.min(by: { $0.key < $1.key }) {
      throw InferenceError("\(url.path): \(clash.value.map(\.lastPathComponent).joined(separator: " and ")) would write the same outputs")
    }
    self = .folder(images)
  }

  /// The name outputs are written under.
  public static func stem(_ url: URL) -> String { url.deletingPathExtension().lastPathComponent }

  /// What int8 calibrates on: the first `count` images (or frames) of the input (`single`:
  /// the image, when already read); unreadable ones in a folder (or ones `admit` refuses)
  /// are left for the segmenting loop to report.
  public func calibrationImages(_ count: Int, single: Image?, admit: (URL) throws -> Void) throws -> [Image] {
    switch self {
    case .image(let url): return [try single ?? ImageIO.read(url)]
    case .folder(let urls):
      var images: [Image] = []
      for url in urls where images.count < count {
        if (try? admit(url)) != nil, let image = try? ImageIO.read(url) { images.append(image) }
      }
      guard !images.isEmpty else { throw InferenceError("int8 calibration: no readable image in the input folder") }
      return images
    case .video(let url):
      let reader = try VideoReader(url)
      defer { reader.close() }
      var frames: [Image] = []
      while frames.count < count, let frame = try reader.next() { frames.append(frame) }
      guard !frames.isEmpty else { throw InferenceError("int8 calibration: \(url.path) has no frame") }
      return frames
    }
  }
}

extension ImageSegmenter {
  /// Refuses the image at `url` when segmenting it would need more memory than this
  /// process may use, judged from its header before it is read. A header that cannot be
  /// read is left for ImageIO.read to name the problem.
  public func checkMemory(ofImageAt url: URL, shorterSide: Int?) throws {
    guard let size = try? ImageIO.size(of: url) else { return }
    try checkMemory(height: size.height, width: size.width, shorterSide: shorterSide, name: url.path)
  }
}
