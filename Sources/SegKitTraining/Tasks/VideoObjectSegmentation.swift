import Foundation

/// Semi-supervised video object segmentation of DAVIS sequences with one-shot
/// fine-tuning: for each sequence, each object of its first annotation gets its own
/// fine-tuned copy of the parent; every later frame takes, per pixel, the object of
/// highest probability where that is above ½ (else background). Writes the DAVIS
/// results layout: `<out>/<sequence>/<frame>.png`, 0/255 for DAVIS 2016, palette
/// object ids for 2017, named like the annotations.
public struct DAVISSegmentation {
  public let modelName: String
  public let parent: StateDict
  public let settings: FineTuningSettings

  public init(modelName: String, parent: StateDict, settings: FineTuningSettings) {
    self.modelName = modelName
    self.parent = parent
    self.settings = settings
  }

  /// What one sequence cost.
  public struct Timing: Codable, Sendable {
    public let sequence: String
    public let objects: Int
    public let fineTuningSeconds: Double
    public let framesPerSecond: Double
  }

  /// Whether every frame of `sequence` already has a result in `folder`.
  public static func isFinished(_ sequence: VideoSequence, in folder: URL) -> Bool {
    sequence.frames.allSatisfy { frame in
      guard let name = frame.label?.url.lastPathComponent else { return false }
      return FileManager.default.fileExists(atPath: folder.appendingPathComponent(sequence.name).appendingPathComponent(name).path)
    }
  }

  /// Segments one sequence into `folder`/<sequence>/ (each file written whole, then
  /// renamed). `progress(done, total)` follows the frames; `shouldStop` is asked
  /// between objects and frames and, when true, ends with `TrainingError.stopped`
  /// (the sequence's files so far stay; it is not finished, so a rerun redoes it).
  public func segment(
    _ sequence: VideoSequence, singleObject: Bool, into folder: URL, progress: (Int, Int) -> Void = { _, _ in },
    shouldStop: @escaping () -> Bool = { false }
  ) throws -> Timing {
    guard let firstAnnotation = sequence.frames.first?.label?.url else {
      throw TrainingError("\(sequence.name): no first-frame annotation to start from")
    }
    var annotation = try ImageIO.readLabel(firstAnnotation)
    // DAVIS 2016's masks are 0/255 with any non-zero value the object; 2017's hold ids, 255 void.
    if singleObject { for i in annotation.pixels.indices where annotation.pixels[i] != 0 { annotation.pixels[i] = voidLabel } }
    guard !OneShotObjectsSegmenter.objectIDs(in: annotation).isEmpty else {
      throw TrainingError("\(firstAnnotation.path): the first annotation holds no object")
    }
    let frames = try sequence.frames.map { try ImageIO.read($0.image) }
    let segmenter = OneShotObjectsSegmenter(modelName: modelName, parent: parent, settings: settings)
    segmenter.shouldStop = shouldStop
    let start = Date()
    let first = try segmenter.start(firstFrame: frames[0], mask: annotation)
    let tuned = Date()
    let output = folder.appendingPathComponent(sequence.name)
    do {
      try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
    } catch {
      throw TrainingError("\(output.path): cannot create the folder (\(error.localizedDescription))")
    }
    for (index, frame) in sequence.frames.enumerated() {
      progress(index, sequence.frames.count)
      guard let name = frame.label?.url.lastPathComponent else { continue }
      var labels = index == 0 ? first : try segmenter.next(frames[index])
      if singleObject { for i in labels.pixels.indices { labels.pixels[i] = labels.pixels[i] != 0 ? 255 : 0 } }
      try ImageIO.writePNG(labels, to: output.appendingPathComponent(name), palette: singleObject ? nil : .pascal)
    }
    progress(sequence.frames.count, sequence.frames.count)
    let segmenting = Date().timeIntervalSince(tuned)
    return Timing(sequence: sequence.name, objects: segmenter.objects.count, fineTuningSeconds: tuned.timeIntervalSince(start),
                  framesPerSecond: Double(max(0, frames.count - 1)) / max(segmenting, 1e-9))
  }
}
