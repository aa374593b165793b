import Foundation

/// The standard semantic-segmentation scores of a confusion matrix, as fractions in [0, 1].
///
/// With TP_c the diagonal, G_c the row sum (ground-truth pixels of class c), P_c the
/// column sum (pixels predicted as c) and N the total:
/// - IoU_c = TP_c / (G_c + P_c − TP_c), undefined (NaN) for a class absent from both;
/// - mIoU = mean of the defined IoU_c (DeepLab's and torchvision's convention);
/// - pixel accuracy = Σ TP_c / N;
/// - accuracy_c = TP_c / G_c, mean accuracy = its mean over classes present in the ground truth;
/// - fwIoU = Σ_c (G_c / N) · IoU_c over classes present in the ground truth.
/// With no counted pixel every score is NaN. In JSON, NaN is written as null.
public struct SegmentationScores: Equatable, Sendable {
  public var meanIoU: Double
  public var pixelAccuracy: Double
  public var meanAccuracy: Double
  public var frequencyWeightedIoU: Double
  public var perClassIoU: [Double]
  public var perClassAccuracy: [Double]
  /// Rows are the ground truth, columns the prediction.
  public var confusionMatrix: [[Int64]]

  public init(_ matrix: ConfusionMatrix) {
    let c = matrix.numClasses
    let rows = matrix.rows
    let truth = rows.map { Double($0.reduce(0, +)) }
    let predicted = (0..<c).map { j in Double(rows.reduce(0) { $0 + $1[j] }) }
    let hits = (0..<c).map { Double(rows[$0][$0]) }
    let total = truth.reduce(0, +)

    let iou = (0..<c).map { i -> Double in
      let union = truth[i] + predicted[i] - hits[i]
      return union > 0 ? hits[i] / union : .nan
    }
    perClassIoU = iou
    perClassAccuracy = (0..<c).map { truth[$0] > 0 ? hits[$0] / truth[$0] : .nan }
    meanIoU = Self.meanOfDefined(perClassIoU)
    meanAccuracy = Self.meanOfDefined(perClassAccuracy)
    pixelAccuracy = total > 0 ? hits.reduce(0, +) / total : .nan
    frequencyWeightedIoU = total > 0
      ? (0..<c).filter { truth[$0] > 0 }.reduce(0) { $0 + truth[$1] / total * iou[$1] } : .nan
    confusionMatrix = rows
  }

  private static func meanOfDefined(_ values: [Double]) -> Double {
    let defined = values.filter { !$0.isNaN }
    return defined.isEmpty ? .nan : defined.reduce(0, +) / Double(defined.count)
  }

  public var numClasses: Int { perClassIoU.count }

  /// NaN compares unequal to itself, so undefined scores are compared by bit pattern.
  public static func == (a: Self, b: Self) -> Bool {
    func same(_ x: Double, _ y: Double) -> Bool { x == y || (x.isNaN && y.isNaN) }
    return same(a.meanIoU, b.meanIoU) && same(a.pixelAccuracy, b.pixelAccuracy)
      && same(a.meanAccuracy, b.meanAccuracy) && same(a.frequencyWeightedIoU, b.frequencyWeightedIoU)
      && a.perClassIoU.count == b.perClassIoU.count && zip(a.perClassIoU, b.perClassIoU).allSatisfy(same)
      && a.perClassAccuracy.count == b.perClassAccuracy.count
      && zip(a.perClassAccuracy, b.perClassAccuracy).allSatisfy(same) && a.confusionMatrix == b.confusionMatrix
  }
}

// MARK: - JSON

extension SegmentationScores: Codable {
  enum CodingKeys: String, CodingKey {
    case meanIoU = "mIoU"
    case pixelAccuracy = "pixel_accuracy"
    case meanAccuracy = "mean_accuracy"
    case frequencyWeightedIoU = "fwIoU"
    case perClassIoU = "per_class_iou"
    case perClassAccuracy = "per_class_accuracy"
    case confusionMatrix = "confusion_matrix"
  }

  public init(from decoder: Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    func score(_ key: CodingKeys) throws -> Double { try container.decodeIfPresent(Double.self, forKey: key) ?? .nan }
    func scores(_ key: CodingKeys) throws -> [Double] { try container.decode([Double?].self, forKey: key).map { $0 ?? .nan } }
    meanIoU = try score(.meanIoU)
    pixelAccuracy = try score(.pixelAccuracy)
    meanAccuracy = try score(.meanAccuracy)
    frequencyWeightedIoU = try score(.frequencyWeightedIoU)
    perClassIoU = try scores(.perClassIoU)
    perClassAccuracy = try container.contains(.perClassAccuracy) ? scores(.perClassAccuracy) : []
    confusionMatrix = try container.decode([[Int64]].self, forKey: .confusionMatrix)
  }

  public func encode(to encoder: Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    func defined(_ x: Double) -> Double? { x.isNaN ? nil : x }
    // encode(Optional) writes an explicit null, which keeps every key present.
    try container.encode(defined(meanIoU), forKey: .meanIoU)
    try container.encode(defined(pixelAccuracy), forKey: .pixelAccuracy)
    try container.encode(defined(meanAccuracy), forKey: .meanAccuracy)
    try container.encode(defined(frequencyWeightedIoU), forKey: .frequencyWeightedIoU)
    try container.encode(perClassIoU.map(defined), forKey: .perClassIoU)
    try container.encode(perClassAccuracy.map(defined), forKey: .perClassAccuracy)
    try container.encode(confusionMatrix, forKey: .confusionMatrix)
  }

  /// The scores as JSON, one matrix row per line (readable even for 150 classes), with
  /// `class_names` when given. Undefined scores are null.
  public func jsonData(classNames: [String]? = nil) throws -> Data {
    func number(_ x: Double) -> String { x.isNaN ? "null" : "\(x)" }
    func list(_ xs: [Double]) -> String { "[" + xs.map(number).joined(separator: ", ") + "]" }
    var fields = [
      "\"mIoU\": \(number(meanIoU))",
      "\"pixel_accuracy\": \(number(pixelAccuracy))",
      "\"mean_accuracy\": \(number(meanAccuracy))",
      "\"fwIoU\": \(number(frequencyWeightedIoU))",
      "\"per_class_iou\": \(list(perClassIoU))",
      "\"per_class_accuracy\": \(list(perClassAccuracy))",
    ]
    if let classNames {
      fields.append("\"class_names\": " + String(decoding: try JSONEncoder().encode(classNames), as: UTF8.self))
    }
    let rows = confusionMatrix.map { "    [" + $0.map(String.init).joined(separator: ", ") + "]" }
    fields.append("\"confusion_matrix\": [\n" + rows.joined(separator: ",\n") + "\n  ]")
    return Data(("{\n  " + fields.joined(separator: ",\n  ") + "\n}\n").utf8)
  }
}

// MARK: - Text

extension SegmentationScores {
  /// A plain-text table: one row per class (IoU, accuracy and ground-truth pixel
  /// count, rates in percent, "-" where undefined), then the summary scores.
  /// Classes without a name in `classNames` are shown by index.
  public func table(classNames: [String] = []) -> String {
    let names = (0..<numClasses).map { $0 < classNames.count ? classNames[$0] : "class \($0)" }
    let nameWidth = max(5, names.map(\.count).max() ?? 0)
    func percent(_ x: Double) -> String { x.isNaN ? "-" : String(format: "%.2f", 100 * x) }
    func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
      let fill = String(repeating: " ", count: max(0, width - text.count))
      return left ? text + fill : fill + text
    }
    var lines = [pad("class", nameWidth, left: true) + "  " + pad("IoU %", 7) + "  " + pad("acc %", 7) + "  " + pad("pixels", 12)]
    for i in 0..<numClasses {
      let pixels = confusionMatrix[i].reduce(0, +)
      lines.append(pad(names[i], nameWidth, left: true) + "  " + pad(percent(perClassIoU[i]), 7) + "  "
        + pad(percent(i < perClassAccuracy.count ? perClassAccuracy[i] : .nan), 7) + "  " + pad(String(pixels), 12))
    }
    lines.append(String(repeating: "-", count: nameWidth + 34))
    lines.append("mIoU \(percent(meanIoU))  pixel accuracy \(percent(pixelAccuracy))  "
      + "mean accuracy \(percent(meanAccuracy))  fwIoU \(percent(frequencyWeightedIoU))")
    return lines.joined(separator: "\n")
  }
}
