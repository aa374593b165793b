import Foundation

/// A binary mask, row-major, `height` × `width`.
public struct BinaryMask: Equatable, Sendable {
  public let height: Int
  public let width: Int
  public var values: [Bool]

  public init(height: Int, width: Int, values: [Bool]) throws {
    guard height >= 0, width >= 0, values.count == height * width else {
      throw MetricsError("binary mask: \(values.count) values cannot fill \(height)×\(width)")
    }
    self.height = height
    self.width = width
    self.values = values
  }

  /// Non-zero values are foreground.
  public init<T: BinaryInteger>(height: Int, width: Int, values: [T]) throws {
    try self.init(height: height, width: width, values: values.map { $0 != 0 })
  }

  /// A 2-D tensor (or [1, H, W]) of any dtype; non-zero values are foreground.
  public init(_ tensor: Tensor) throws {
    let shape = tensor.shape
    let plane: [Int]
    switch shape.count {
    case 2: plane = shape
    case 3 where shape[0] == 1: plane = Array(shape.dropFirst())
    default: throw MetricsError("binary mask: expected a tensor of shape [H, W] or [1, H, W], got \(shape)")
    }
    let values = try (tensor .!= 0).to(.uint8).to(.cpu).toArray(UInt8.self)
    try self.init(height: plane[0], width: plane[1], values: values)
  }

  public subscript(y: Int, x: Int) -> Bool { values[y * width + x] }

  public var foregroundCount: Int { values.reduce(0) { $0 + ($1 ? 1 : 0) } }

  fileprivate func checkSize(_ other: BinaryMask, _ role: String) throws {
    guard other.height == height, other.width == width else {
      throw MetricsError("DAVIS: the \(role) is \(other.height)×\(other.width) but the prediction is \(height)×\(width)")
    }
  }

  /// This mask with the `void` pixels cleared.
  fileprivate func removing(_ void: BinaryMask?) -> BinaryMask {
    guard let void else { return self }
    var result = self
    for i in values.indices where void.values[i] { result.values[i] = false }
    return result
  }
}

/// The DAVIS video object segmentation measures, computed as the DAVIS benchmark's
/// reference code (davis2017-evaluation, the same as DAVIS 2016's) computes them.
///
/// Temporal stability T (DAVIS 2016) is not provided: it needs shape-context matching
/// between consecutive frames, and DAVIS 2017 dropped it from the benchmark.
public enum DAVIS {
  /// Region similarity J: |prediction ∩ truth| / |prediction ∪ truth|, 1 when both are
  /// empty. Pixels marked in `void` count for neither.
  public static func regionSimilarity(
    prediction: BinaryMask, groundTruth: BinaryMask, void: BinaryMask? = nil
  ) throws -> Double {
    try prediction.checkSize(groundTruth, "ground truth")
    if let void { try prediction.checkSize(void, "void mask") }
    var intersection = 0
    var union = 0
    for i in prediction.values.indices where void?.values[i] != true {
      let p = prediction.values[i]
      let g = groundTruth.values[i]
      if p && g { intersection += 1 }
      if p || g { union += 1 }
    }
    return union == 0 ? 1 : Double(intersection) / Double(union)
  }

  /// Boundary precision, recall and their F-measure.
  public struct BoundaryMatch: Equatable, Sendable {
    public var precision: Double
    public var recall: Double
    public var f: Double

    public init(precision: Double, recall: Double, f: Double) {
      self.precision = precision
      self.recall = recall
      self.f = f
    }
  }

  /// Boundary accuracy F, as DAVIS's `f_measure`:
  /// 1. each mask (void pixels cleared) becomes a one-pixel-wide boundary map by `seg2bmap`:
  ///    a pixel is on the boundary when it differs from its east, south or south-east
  ///    neighbour (outside the image counts as background; the last row compares east
  ///    only, the last column south only, the bottom-right pixel is never a boundary);
  /// 2. the tolerance is r = ceil(`tolerance` · √(H² + W²)) pixels (a `tolerance` of 1 or
  ///    more is taken as r directly); each boundary map is dilated by the disk
  ///    {(dy, dx): dy² + dx² ≤ r²} (skimage's `disk(r)`);
  /// 3. precision = |predicted boundary ∩ dilated true boundary| / |predicted boundary|,
  ///    recall = |true boundary ∩ dilated predicted boundary| / |true boundary|; with an empty
  ///    predicted boundary P = 1 and R = 0 (or both 1 when the truth is empty too), with an
  ///    empty true boundary only, P = 0 and R = 1;
  /// 4. F = 2PR / (P + R), 0 when P + R = 0.
  public static func boundaryMatch(
    prediction: BinaryMask, groundTruth: BinaryMask, void: BinaryMask? = nil, tolerance: Double = 0.008
  ) throws -> BoundaryMatch {
    try prediction.checkSize(groundTruth, "ground truth")
    if let void { try prediction.checkSize(void, "void mask") }
    let h = prediction.height
    let w = prediction.width
    let radius = tolerance >= 1
      ? Int(tolerance) : Int((tolerance * Double(h * h + w * w).squareRoot()).rounded(.up))
    let predictedBoundary = boundaryMap(prediction.removing(void))
    let trueBoundary = boundaryMap(groundTruth.removing(void))
    let predictedCount = predictedBoundary.foregroundCount
    let trueCount = trueBoundary.foregroundCount

    let precision: Double
    let recall: Double
    switch (predictedCount, trueCount) {
    case (0, 0): (precision, recall) = (1, 1)
    case (0, _): (precision, recall) = (1, 0)
    case (_, 0): (precision, recall) = (0, 1)
    default:
      // |B ∧ dilate(B′)| counted at B's pixels only: the dilation is never built.
      let predictedMatched = countNear(predictedBoundary, DiskQuery(trueBoundary, radius: radius))
      let trueMatched = countNear(trueBoundary, DiskQuery(predictedBoundary, radius: radius))
      precision = Double(predictedMatched) / Double(predictedCount)
      recall = Double(trueMatched) / Double(trueCount)
    }
    let f = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall)
    return BoundaryMatch(precision: precision, recall: recall, f: f)
  }

  /// Boundary accuracy F (see `boundaryMatch`).
  public static func boundaryAccuracy(
    prediction: BinaryMask, groundTruth: BinaryMask, void: BinaryMask? = nil, tolerance: Double = 0.008
  ) throws -> Double {
    try boundaryMatch(prediction: prediction, groundTruth: groundTruth, void: void, tolerance: tolerance).f
  }

  /// DAVIS's `seg2bmap` at the mask's own size: a pixel differs from its east, south
  /// or south-east neighbour (the last row compares east only, the last column south
  /// only, the bottom-right pixel is never boundary).
  public static func boundaryMap(_ mask: BinaryMask) -> BinaryMask {
    let (h, w) = (mask.height, mask.width)
    var result = mask
    mask.values.withUnsafeBufferPointer { m in
      result.values.withUnsafeMutableBufferPointer { out in
        for y in 0..<h {
          let row = y * w
          for x in 0..<w {
            let here = m[row + x]
            let lastRow = y == h - 1, lastColumn = x == w - 1
            if lastRow && lastColumn {
              out[row + x] = false
            } else if lastRow {
              out[row + x] = here != m[row + x + 1]
            } else if lastColumn {
              out[row + x] = here != m[row + w + x]
            } else {
              out[row + x] = here != m[row + x + 1] || here != m[row + w + x] || here != m[row + w + x + 1]
            }
          }
        }
      }
    }
    return result
  }

  /// "Is a pixel of `mask` within the disk of `radius` around (y, x)?" in O(radius):
  /// row prefix sums answer each of the disk's row spans in constant time. The same
  /// as reading the mask dilated by skimage's `disk(radius)` at (y, x).
  struct DiskQuery {
    let width: Int
    let height: Int
    let radius: Int
    var prefix: [Int32]
    /// halfWidths[|dy|]: the largest dx with dx² + dy² ≤ r².
    let halfWidths: [Int]

    init(_ mask: BinaryMask, radius: Int) {
      (width, height, self.radius) = (mask.width, mask.height, max(radius, 0))
      let (w, h) = (width, height)
      prefix = [Int32](repeating: 0, count: h * (w + 1))
      for y in 0..<h {
        for x in 0..<w { prefix[y * (w + 1) + x + 1] = prefix[y * (w + 1) + x] + (mask.values[y * w + x] ? 1 : 0) }
      }
      let r = self.radius
      halfWidths = (0...r).map { dy -> Int in
        var half = 0
        while (half + 1) * (half + 1) + dy * dy <= r * r { half += 1 }
        return half
      }
    }

    func hit(_ y: Int, _ x: Int) -> Bool {
      for dy in -radius...radius {
        let row = y + dy
        guard row >= 0, row < height else { continue }
        let half = halfWidths[abs(dy)]
        let (lo, hi) = (max(0, x - half), min(width, x + half + 1))
        if prefix[row * (width + 1) + hi] - prefix[row * (width + 1) + lo] > 0 { return true }
      }
      return false
    }
  }

  /// How many pixels of `points` the query's mask reaches within its disk.
  static func countNear(_ points: BinaryMask, _ query: DiskQuery) -> Int {
    var count = 0
    for (index, set) in points.values.enumerated() where set && query.hit(index / points.width, index % points.width) {
      count += 1
    }
    return count
  }

  /// Per-sequence statistics of per-frame J or F values, as DAVIS's `db_statistics`:
  /// - mean: the mean of the values;
  /// - recall: the fraction of values above 0.5;
  /// - decay: mean of the first quarter minus mean of the last quarter, the quarters
  ///   being frames ids[i]…ids[i+1] (inclusive, so neighbours share a frame) with
  ///   ids = round(linspace(1, n, 5)) − 1.
  /// NaN values are left out of all three. DAVIS 2017's semi-supervised evaluation drops
  /// the first and last frame of each sequence before this (`perFrame.dropFirst().dropLast()`);
  /// the reference code's 8-bit frame indices wrap for sequences over 256 frames, these do not.
  public struct Statistics: Equatable, Sendable {
    public var mean: Double
    public var recall: Double
    public var decay: Double

    public init(perFrame values: [Double]) {
      func mean<C: Collection>(_ xs: C) -> Double where C.Element == Double {
        let defined = xs.filter { !$0.isNaN }
        return defined.isEmpty ? .nan : defined.reduce(0, +) / Double(defined.count)
      }
      let defined = values.filter { !$0.isNaN }
      self.mean = mean(defined)
      recall = defined.isEmpty ? .nan : Double(defined.filter { $0 > 0.5 }.count) / Double(defined.count)
      guard !values.isEmpty else {
        decay = .nan
        return
      }
      let n = Double(values.count)
      let ids = (0...4).map { i -> Int in
        let position = 1 + (n - 1) * Double(i) / 4  // numpy's linspace(1, n, 5)
        return Int((position + 1e-10).rounded(.toNearestOrEven)) - 1
      }
      decay = mean(values[ids[0]...ids[1]]) - mean(values[ids[3]...ids[4]])
    }
  }

  /// J and F statistics of one sequence (one object).
  public struct SequenceScores: Equatable, Sendable {
    public var j: Statistics
    public var f: Statistics
    public var perFrameJ: [Double]
    public var perFrameF: [Double]
    /// (J mean + F mean) / 2, DAVIS's J&F.
    public var jAndF: Double { (j.mean + f.mean) / 2 }
  }

  /// Evaluates one object over a sequence. With `excludeFirstAndLast` (DAVIS 2017
  /// semi-supervised: the first frame's mask is given, the last is left out), those two
  /// frames do not count.
  public static func evaluateSequence(
    predictions: [BinaryMask], groundTruth: [BinaryMask], void: [BinaryMask]? = nil,
    excludeFirstAndLast: Bool = true, tolerance: Double = 0.008
  ) throws -> SequenceScores {
    guard predictions.count == groundTruth.count else {
      throw MetricsError("DAVIS: \(predictions.count) predicted frames but \(groundTruth.count) ground-truth frames")
    }
    if let void, void.count != groundTruth.count {
      throw MetricsError("DAVIS: \(void.count) void masks for \(groundTruth.count) frames")
    }
    var frames = Array(predictions.indices)
    if excludeFirstAndLast {
      guard frames.count > 2 else {
        throw MetricsError("DAVIS: \(frames.count) frames leave none once the first and last are excluded")
      }
      frames = Array(frames.dropFirst().dropLast())
    }
    var perFrameJ: [Double] = []
    var perFrameF: [Double] = []
    for i in frames {
      perFrameJ.append(try regionSimilarity(prediction: predictions[i], groundTruth: groundTruth[i], void: void?[i]))
      perFrameF.append(try boundaryAccuracy(prediction: predictions[i], groundTruth: groundTruth[i], void: void?[i],
                                            tolerance: tolerance))
    }
    return SequenceScores(j: Statistics(perFrame: perFrameJ), f: Statistics(perFrame: perFrameF),
                          perFrameJ: perFrameJ, perFrameF: perFrameF)
  }
}
