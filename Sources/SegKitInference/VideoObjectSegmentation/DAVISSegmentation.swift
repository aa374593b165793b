import Foundation

/// Semi-supervised video object segmentation of DAVIS sequences by any sequence
/// segmenter started from each sequence's first annotation (OSVOS's one-shot
/// fine-tuning per object, MaskRNN's recurrence per object, …). Writes the DAVIS
/// results layout: `<out>/<sequence>/<frame>.png`, 0/255 for DAVIS 2016, palette object
/// ids for 2017, named like the annotations.
public struct DAVISSegmentation {
  /// A fresh segmenter for each sequence (made knowing the sequence, e.g. to read its exact flows).
  public let makeSegmenter: (VideoSequence) throws -> any SequenceSegmenter

  public init(makeSegmenter: @escaping () throws -> any SequenceSegmenter) {
    self.makeSegmenter = { _ in try makeSegmenter() }
  }

  public init(makeSegmenterFor makeSegmenter: @escaping (VideoSequence) throws -> any SequenceSegmenter) {
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
  /// between objects and frames and, when true, ends with `StoppedOnRequest`
  /// (the sequence's files so far stay; it is not finished, so a rerun redoes it).
  public func segment(
    _ sequence: VideoSequence, singleObject: Bool, into folder: URL, progress: (Int, Int) -> Void = { _, _ in },
    shouldStop: @escaping () -> Bool = { false }
  ) throws -> Timing {
    guard let firstAnnotation = sequence.frames.first?.label?.url else {
      throw InferenceError("\(sequence.name): no first-frame annotation to start from")
    }
    var annotation = try ImageIO.readLabel(firstAnnotation)
    // DAVIS 2016's masks are 0/255 with any non-zero value the object; 2017's hold ids, 255 void.
    if singleObject { for i in annotation.pixels.indices where annotation.pixels[i] != 0 { annotation.pixels[i] = voidLabel } }
    let objects = ObjectMasks.ids(in: annotation).count
    guard objects > 0 else {
      throw InferenceError("\(firstAnnotation.path): the first annotation holds no object")
    }
    let frames = try sequence.frames.map { try ImageIO.read($0.image) }
    let segmenter = try makeSegmenter(sequence)
    let start = Date()
    let first = try segmenter.start(firstFrame: frames[0], mask: annotation, following: frames.count > 1 ? frames[1] : nil)
    let tuned = Date()
    let output = folder.appendingPathComponent(sequence.name)
    do {
      try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
    } catch {
      throw InferenceError("\(output.path): cannot create the folder (\(error.localizedDescription))")
    }
    for (index, frame) in sequence.frames.enumerated() {
      progress(index, sequence.frames.count)
      if shouldStop() { throw StoppedOnRequest() }
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

  /// What happens to each sequence of a run, in order.
  public enum Event {
    case skipped(VideoSequence)
    case started(VideoSequence)
    case frames(VideoSequence, done: Int, total: Int)
    case finished(VideoSequence, Timing)
    case stopped(VideoSequence)
  }

  /// Segments `sequences` into `folder` (Cutie's result saver: the layout, what is
  /// finished, the timings). Sequences already complete are skipped unless
  /// `overwrite`; a stop request ends the current sequence unfinished (a rerun redoes
  /// it) and the run returns `stopped`. timing.json keeps the timings of sequences
  /// skipped now from the run that made them.
  public func run(
    _ sequences: [VideoSequence], singleObject: Bool, into folder: URL, overwrite: Bool, report: (Event) -> Void = { _ in },
    shouldStop: @escaping () -> Bool = { false }
  ) throws -> (timings: [Timing], stopped: Bool) {
    var timings: [Timing] = []
    var stopped = false
    for sequence in sequences {
      if !overwrite && Self.isFinished(sequence, in: folder) {
        report(.skipped(sequence))
        continue
      }
      report(.started(sequence))
      do {
        let timing = try segment(sequence, singleObject: singleObject, into: folder,
                                 progress: { report(.frames(sequence, done: $0, total: $1)) }, shouldStop: shouldStop)
        timings.append(timing)
        report(.finished(sequence, timing))
      } catch is StoppedOnRequest {
        report(.stopped(sequence))
        stopped = true
        break
      }
    }
    try Self.recordTimings(timings, in: folder)
    return (timings, stopped)
  }

  /// Writes timing.json; sequences not redone keep the timings an earlier run recorded.
  static func recordTimings(_ timings: [Timing], in folder: URL) throws {
    let timingURL = folder.appendingPathComponent("timing.json")
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    let earlier = (try? Data(contentsOf: timingURL)).flatMap { try? decoder.decode([Timing].self, from: $0) } ?? []
    let redone = Set(timings.map(\.sequence))
    let all = earlier.filter { !redone.contains($0.sequence) } + timings
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    try AtomicFile.write(encoder.encode(all), to: timingURL)
  }
}
