import Foundation

/// A metric input that cannot be used: mismatched shapes, labels or predictions
/// outside the classes, matrices of different sizes. The message names the problem.
public struct MetricsError: Error, CustomStringConvertible, Equatable, Sendable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// Pixel counts of (ground truth, prediction) pairs over `numClasses` classes:
/// `self[groundTruth, prediction]`, rows are the ground truth. Pixels whose label is
/// `ignoreIndex` (void) are not counted, whatever was predicted there.
///
/// Labels other than the ignore index and predictions must lie in [0, numClasses):
/// anything else is an error rather than silently dropped, since it means the
/// labels and the model disagree about the classes.
public struct ConfusionMatrix: Equatable, Sendable {
  public let numClasses: Int
  public let ignoreIndex: Int
  /// Row-major counts, `counts[gt * numClasses + prediction]`.
  public private(set) var counts: [Int64]

  public init(numClasses: Int, ignoreIndex: Int = 255) {
    precondition(numClasses > 0, "a confusion matrix needs at least one class")
    self.numClasses = numClasses
    self.ignoreIndex = ignoreIndex
    counts = [Int64](repeating: 0, count: numClasses * numClasses)
  }

  /// A matrix from rows of counts (rows = ground truth), e.g. one read back from JSON.
  public init(rows: [[Int64]], ignoreIndex: Int = 255) throws {
    guard !rows.isEmpty, rows.allSatisfy({ $0.count == rows.count }) else {
      throw MetricsError("confusion matrix: expected a square, non-empty matrix, got rows of lengths \(rows.map(\.count))")
    }
    guard rows.allSatisfy({ $0.allSatisfy { $0 >= 0 } }) else {
      throw MetricsError("confusion matrix: counts must be non-negative")
    }
    self.init(numClasses: rows.count, ignoreIndex: ignoreIndex)
    counts = rows.flatMap { $0 }
  }

  public subscript(groundTruth: Int, prediction: Int) -> Int64 {
    counts[groundTruth * numClasses + prediction]
  }

  /// The counts as rows, one per ground-truth class.
  public var rows: [[Int64]] {
    (0..<numClasses).map { Array(counts[($0 * numClasses)..<(($0 + 1) * numClasses)]) }
  }

  /// Number of counted (non-void) pixels.
  public var total: Int64 { counts.reduce(0, +) }

  /// Adds the pixels of integer tensors of equal shape (typically [N, H, W]), on
  /// their own device: one bincount of gt·C + prediction over the valid pixels.
  public mutating func update(predictions: Tensor, labels: Tensor) throws {
    guard predictions.shape == labels.shape else {
      throw MetricsError("confusion matrix: predictions have shape \(predictions.shape) but labels have shape \(labels.shape)")
    }
    guard !predictions.dtype.isFloatingPoint, !labels.dtype.isFloatingPoint else {
      throw MetricsError(
        "confusion matrix: predictions and labels must be integer class indices, got \(predictions.dtype) and \(labels.dtype) (take the argmax of the logits first)")
    }
    guard predictions.count > 0 else { return }
    let c = Double(numClasses)
    let gt = try labels.to(.int64).flatten()
    let pred = try predictions.to(dtype: .int64, device: gt.device).flatten()
    let valid = try gt .!= Double(ignoreIndex)
    let validLabels = try gt.maskedSelect(valid)
    let validPredictions = try pred.maskedSelect(valid)
    guard validLabels.count > 0 else { return }
    try checkRange(validLabels, what: "label", allowance: " and is not the ignore index \(ignoreIndex)")
    try checkRange(validPredictions, what: "prediction", allowance: "")
    let pairs = try validLabels * c + validPredictions
    let binned = try pairs.bincount(minLength: numClasses * numClasses).to(.cpu).toArray(Int64.self)
    for i in counts.indices { counts[i] += binned[i] }
  }

  private func checkRange(_ values: Tensor, what: String, allowance: String) throws {
    let low = Int(try values.min().item())
    let high = Int(try values.max().item())
    guard low >= 0, high < numClasses else {
      let bad = low < 0 ? low : high
      throw MetricsError("confusion matrix: \(what) \(bad) lies outside the classes [0, \(numClasses))\(allowance)")
    }
  }

  /// Adds the pixels of flat arrays of class indices (same length, same order).
  public mutating func update<P: BinaryInteger, L: BinaryInteger>(predictions: [P], labels: [L]) throws {
    guard predictions.count == labels.count else {
      throw MetricsError("confusion matrix: \(predictions.count) predictions but \(labels.count) labels")
    }
    var added = [Int64](repeating: 0, count: counts.count)
    for (p, g) in zip(predictions, labels) {
      let label = Int(g)
      if label == ignoreIndex { continue }
      let prediction = Int(p)
      guard label >= 0, label < numClasses else {
        throw MetricsError("confusion matrix: label \(label) lies outside the classes [0, \(numClasses)) and is not the ignore index \(ignoreIndex)")
      }
      guard prediction >= 0, prediction < numClasses else {
        throw MetricsError("confusion matrix: prediction \(prediction) lies outside the classes [0, \(numClasses))")
      }
      added[label * numClasses + prediction] += 1
    }
    // Applied only once the whole input is known to be valid.
    for i in counts.indices { counts[i] += added[i] }
  }

  /// Adds another matrix's counts (e.g. from another worker or another part of the data).
  public mutating func merge(_ other: ConfusionMatrix) throws {
    guard other.numClasses == numClasses else {
      throw MetricsError("confusion matrix: cannot merge a \(other.numClasses)-class matrix into a \(numClasses)-class one")
    }
    for i in counts.indices { counts[i] += other.counts[i] }
  }

  public func merged(with other: ConfusionMatrix) throws -> ConfusionMatrix {
    var result = self
    try result.merge(other)
    return result
  }

  public mutating func reset() {
    counts = [Int64](repeating: 0, count: counts.count)
  }

  /// The scores of the pixels counted so far.
  public var scores: SegmentationScores { SegmentationScores(self) }
}
