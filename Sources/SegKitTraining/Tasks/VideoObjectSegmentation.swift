import Foundation

/// Semi-supervised video object segmentation of DAVIS sequences by any sequence
/// segmenter started from each sequence's first annotation (OSVOS's one-shot
/// fine-tuning per object, MaskRNN's recurrence per object, …). Writes the DAVIS
/// results layout: `<out>/<sequence>/<frame>.png`, 0/255 for DAVIS 2016, palette object
/// ids for 2017, named like the annotations.
public struct DAVISSegmentation {
  /// A fresh segmenter for each sequence.
  public let makeSegmenter: () throws -> any SequenceSegmenter

  public init(makeSegmenter: @escaping () throws -> any SequenceSegmenter) {
    self.makeSegmenter = makeSegmenter
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
    let objects = ObjectMasks.ids(in: annotation).count
    guard objects > 0 else {
      throw TrainingError("\(firstAnnotation.path): the first annotation holds no object")
    }
    let frames = try sequence.frames.map { try ImageIO.read($0.image) }
    let segmenter = try makeSegmenter()
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
      if shouldStop() { throw TrainingError.stopped }
      let following = index + 1 < frames.count ? frames[index + 1] : nil
      var labels = index == 0 ? first : try segmenter.next(frames[index], following: following)
      guard let name = frame.label?.url.lastPathComponent else { continue }
      if singleObject { for i in labels.pixels.indices { labels.pixels[i] = labels.pixels[i] != 0 ? 255 : 0 } }
      try ImageIO.writePNG(labels, to: output.appendingPathComponent(name), palette: singleObject ? nil : .pascal)
    }
    progress(sequence.frames.count, sequence.frames.count)
    let segmenting = Date().timeIntervalSince(tuned)
    return Timing(sequence: sequence.name, objects: objects, fineTuningSeconds: tuned.timeIntervalSince(start),
                  framesPerSecond: Double(max(0, frames.count - 1)) / max(segmenting, 1e-9))
  }
}
