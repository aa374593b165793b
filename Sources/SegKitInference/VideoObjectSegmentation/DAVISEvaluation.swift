import Dispatch
import Foundation

/// Semi-supervised video object segmentation scored as davis2017-evaluation scores
/// it: per object, J (region similarity) and F (boundary accuracy, tolerance 0.008 of
/// the diagonal) on every frame but the first and the last, their mean, recall and
/// decay; globally the plain mean of each over all objects (every object of every
/// sequence weighs the same) and J&F = (J-Mean + F-Mean) / 2.
///
/// Objects: DAVIS 2017's palette annotations hold ids 1…K, K read from each
/// sequence's first annotation, void (255) counted as background; DAVIS 2016's 0/255
/// annotations are one object. Results are PNGs named like the annotations in
/// `RESULTS/<sequence>/`, ids as palette indices (2017) or any non-zero value as the
/// object (2016). Unlike the official code, sequences of 256 frames or more get a
/// correct decay (its 8-bit frame indices wrap there).
public enum DAVISEvaluation {
  /// One object's scores.
  public struct ObjectScores: Sendable {
    public let sequence: String
    /// 1-based object id.
    public let object: Int
    public let scores: DAVIS.SequenceScores
  }

  /// Every object's scores and their means.
  public struct Report: Sendable {
    public let objects: [ObjectScores]

    /// J&F-Mean, J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay, in that order.
    public var global: [(name: String, value: Double)] {
      func mean(_ value: (DAVIS.SequenceScores) -> Double) -> Double {
        objects.isEmpty ? .nan : objects.map { value($0.scores) }.reduce(0, +) / Double(objects.count)
      }
      let jMean = mean { $0.j.mean }, fMean = mean { $0.f.mean }
      return [("J&F-Mean", (jMean + fMean) / 2), ("J-Mean", jMean), ("J-Recall", mean { $0.j.recall }),
              ("J-Decay", mean { $0.j.decay }), ("F-Mean", fMean), ("F-Recall", mean { $0.f.recall }),
              ("F-Decay", mean { $0.f.decay })]
    }

    /// davis2017-evaluation's `global_results-<split>.csv`.
    public var globalCSV: String {
      let values = global
      return values.map(\.name).joined(separator: ",") + "\n"
        + values.map { String(format: "%.3f", $0.value) }.joined(separator: ",") + "\n"
    }

    /// davis2017-evaluation's `per-sequence_results-<split>.csv`: `<sequence>_<object>`, J-Mean, F-Mean.
    public var perSequenceCSV: String {
      "Sequence,J-Mean,F-Mean\n" + objects.map {
        "\($0.sequence)_\($0.object)," + String(format: "%.3f,%.3f", $0.scores.j.mean, $0.scores.f.mean)
      }.joined(separator: "\n") + "\n"
    }

    /// The unrounded values: {"global": {...}, "objects": [{"sequence", "object", "J-Mean", …}]}.
    public func json() throws -> Data {
      func number(_ value: Double) -> Any { value.isNaN ? NSNull() : value }
      let root: [String: Any] = [
        "global": Dictionary(uniqueKeysWithValues: global.map { ($0.name, number($0.value)) }),
        "objects": objects.map { object -> [String: Any] in
          let s = object.scores
          return ["sequence": object.sequence, "object": object.object, "J-Mean": number(s.j.mean),
                  "J-Recall": number(s.j.recall), "J-Decay": number(s.j.decay), "F-Mean": number(s.f.mean),
                  "F-Recall": number(s.f.recall), "F-Decay": number(s.f.decay)]
        },
      ]
      return try JSONSerialization.data(withJSONObject: root, options: [.prettyPrinted, .sortedKeys])
    }
  }

  /// Scores the results folder against the sequences of `dataset` (DAVIS 2016 or
  /// 2017), sequences in parallel on every core.
  public static func run(results: URL, dataset: VideoDataset) throws -> Report {
    let singleObject = dataset.frames.format == .davis2016
    let sequences = dataset.sequences
    var outcomes = [Result<[ObjectScores], Error>](repeating: .success([]), count: sequences.count)
    let lock = NSLock()
    DispatchQueue.concurrentPerform(iterations: sequences.count) { index in
      let outcome = Result { try evaluate(sequences[index], results: results, singleObject: singleObject) }
      lock.lock()
      outcomes[index] = outcome
      lock.unlock()
    }
    return Report(objects: try outcomes.flatMap { try $0.get() })
  }

  private static func evaluate(_ sequence: VideoSequence, results: URL, singleObject: Bool) throws -> [ObjectScores] {
    var truths: [Image] = [], predictions: [Image] = []
    for frame in sequence.frames {
      guard let annotation = frame.label?.url else {
        throw InferenceError("\(frame.image.path): the frame has no annotation to score against")
      }
      let truth = try ImageIO.readLabel(annotation)
      let url = results.appendingPathComponent(sequence.name).appendingPathComponent(annotation.lastPathComponent)
      guard FileManager.default.fileExists(atPath: url.path) else {
        throw InferenceError("\(url.path): missing prediction for \(sequence.name) frame \(annotation.lastPathComponent)")
      }
      let prediction = try ImageIO.readLabel(url)
      guard prediction.width == truth.width, prediction.height == truth.height else {
        throw InferenceError("\(url.path): \(prediction.width)×\(prediction.height), but the annotation is \(truth.width)×\(truth.height)")
      }
      truths.append(truth)
      predictions.append(prediction)
    }
    guard let first = truths.first else { return [] }
    let objectCount = singleObject ? 1 : Int(first.pixels.filter { $0 != voidLabel }.max() ?? 0)
    if !singleObject {
      for (index, prediction) in predictions.enumerated() {
        if let highest = prediction.pixels.max(), Int(highest) > objectCount {
          let name = sequence.frames[index].label?.url.lastPathComponent ?? "\(index)"
          throw InferenceError(
            "\(results.appendingPathComponent(sequence.name).appendingPathComponent(name).path): object id \(highest), but \(sequence.name)'s first annotation has \(objectCount) objects")
        }
      }
    }
    return try (1...max(objectCount, 1)).compactMap { object -> ObjectScores? in
      guard objectCount > 0 else { return nil }
      func mask(_ image: Image, truth: Bool) throws -> BinaryMask {
        let values = image.pixels.map { value -> Bool in
          if singleObject { return value != 0 }
          return Int(value) == object && !(truth && value == voidLabel)
        }
        return try BinaryMask(height: image.height, width: image.width, values: values)
      }
      let scores = try DAVIS.evaluateSequence(
        predictions: predictions.map { try mask($0, truth: false) }, groundTruth: truths.map { try mask($0, truth: true) })
      return ObjectScores(sequence: sequence.name, object: object, scores: scores)
    }
  }
}
