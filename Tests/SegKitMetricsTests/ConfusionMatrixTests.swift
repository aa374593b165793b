import Foundation
import SegKitMetrics
import SegKitTestSupport
import XCTest

final class ConfusionMatrixTests: XCTestCase {
  /// Two classes, one void pixel: hand-checked counts and scores.
  func testSmallExampleByHand() throws {
    var matrix = ConfusionMatrix(numClasses: 3)
    try matrix.update(predictions: [0, 0, 1, 1, 1, 2], labels: [0, 1, 1, 1, 255, 1])
    XCTAssertEqual(matrix.rows, [[1, 0, 0], [1, 2, 1], [0, 0, 0]])
    XCTAssertEqual(matrix.total, 5)
    let s = matrix.scores
    // IoU0 = 1 / (1 + 2 - 1), IoU1 = 2 / (4 + 2 - 2), IoU2 = 0 / (0 + 1 - 0): predicted but absent.
    XCTAssertEqual(s.perClassIoU, [0.5, 0.5, 0])
    XCTAssertEqual(s.meanIoU, 1.0 / 3, accuracy: 1e-12)
    XCTAssertEqual(s.pixelAccuracy, 3.0 / 5, accuracy: 1e-12)
    XCTAssertEqual(s.perClassAccuracy[0], 1)
    XCTAssertEqual(s.perClassAccuracy[1], 0.5)
    XCTAssertTrue(s.perClassAccuracy[2].isNaN)
    XCTAssertEqual(s.meanAccuracy, 0.75, accuracy: 1e-12)
    XCTAssertEqual(s.frequencyWeightedIoU, 0.2 * 0.5 + 0.8 * 0.5, accuracy: 1e-12)
  }

  func testAbsentClassIsLeftOutOfTheMeanAndWrittenAsNull() throws {
    var matrix = ConfusionMatrix(numClasses: 3)
    try matrix.update(predictions: [0, 1], labels: [0, 1])
    let s = matrix.scores
    XCTAssertEqual(s.meanIoU, 1)
    XCTAssertTrue(s.perClassIoU[2].isNaN)
    let json = try XCTUnwrap(JSONSerialization.jsonObject(with: try s.jsonData()) as? [String: Any])
    XCTAssertEqual(
      Set(json.keys),
      ["mIoU", "pixel_accuracy", "mean_accuracy", "fwIoU", "per_class_iou", "per_class_accuracy", "confusion_matrix"])
    let perClass = try XCTUnwrap(json["per_class_iou"] as? [Any])
    XCTAssertEqual(perClass.count, 3)
    XCTAssertTrue(perClass[2] is NSNull)
    XCTAssertEqual(json["confusion_matrix"] as? [[Int]], [[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    XCTAssertEqual(try JSONDecoder().decode(SegmentationScores.self, from: try s.jsonData()), s)
  }

  func testEmptyMatrixHasUndefinedScores() throws {
    let s = ConfusionMatrix(numClasses: 2).scores
    XCTAssertTrue(s.meanIoU.isNaN && s.pixelAccuracy.isNaN && s.meanAccuracy.isNaN && s.frequencyWeightedIoU.isNaN)
    let json = try XCTUnwrap(JSONSerialization.jsonObject(with: try s.jsonData()) as? [String: Any])
    XCTAssertTrue(json["mIoU"] is NSNull)
  }

  func testTensorArrayAndMergedUpdatesAgree() throws {
    let c = 4
    let labels = try Tensor.randint(0, c, [2, 9, 11])
    let void = try Tensor.rand([2, 9, 11]) .< 0.2
    let withVoid = try Tensor.where(void, try Tensor.full([2, 9, 11], 255, dtype: .int64), labels)
    let predictions = try Tensor.randint(0, c, [2, 9, 11])

    var fromTensors = ConfusionMatrix(numClasses: c)
    try fromTensors.update(predictions: predictions, labels: withVoid)
    var fromArrays = ConfusionMatrix(numClasses: c)
    try fromArrays.update(predictions: try predictions.toArray(Int64.self), labels: try withVoid.toArray(Int64.self))
    XCTAssertEqual(fromTensors, fromArrays)
    XCTAssertEqual(fromTensors.total, Int64(try (withVoid .!= 255).sum().item()))

    var first = ConfusionMatrix(numClasses: c)
    try first.update(predictions: predictions[0], labels: withVoid[0])
    var second = ConfusionMatrix(numClasses: c)
    try second.update(predictions: predictions[1].to(.uint8), labels: withVoid[1].to(.int32))
    XCTAssertEqual(try first.merged(with: second), fromTensors)
  }

  func testBadInputIsAnErrorAndCountsNothing() throws {
    var matrix = ConfusionMatrix(numClasses: 3)
    try matrix.update(predictions: [1], labels: [1])
    let before = matrix
    func message(_ body: () throws -> Void) -> String {
      do { try body() } catch { return "\(error)" }
      return "no error"
    }
    XCTAssertTrue(message { try matrix.update(predictions: [0, 1], labels: [7, 1]) }.contains("label 7 lies outside the classes [0, 3)"))
    XCTAssertTrue(message { try matrix.update(predictions: [0, 3], labels: [0, 1]) }.contains("prediction 3"))
    XCTAssertTrue(message { try matrix.update(predictions: [0], labels: [0, 1]) }.contains("1 predictions but 2 labels"))
    XCTAssertTrue(message {
      try matrix.update(predictions: try Tensor.zeros([2, 3], dtype: .int64), labels: try Tensor.zeros([3, 2], dtype: .int64))
    }.contains("shape [2, 3]"))
    XCTAssertTrue(message {
      try matrix.update(predictions: try Tensor.zeros([2, 3]), labels: try Tensor.zeros([2, 3], dtype: .int64))
    }.contains("argmax"))
    XCTAssertTrue(message {
      try matrix.update(predictions: try Tensor([0, 1] as [Int64]), labels: try Tensor([-1, 1] as [Int64]))
    }.contains("label -1"))
    XCTAssertTrue(message { try matrix.merge(ConfusionMatrix(numClasses: 2)) }.contains("2-class"))
    XCTAssertEqual(matrix, before)
  }

  func testTableShowsClassNamesAndPercentages() throws {
    var matrix = ConfusionMatrix(numClasses: 3)
    try matrix.update(predictions: [0, 0, 1, 1, 1, 2], labels: [0, 1, 1, 1, 255, 1])
    let table = matrix.scores.table(classNames: ["background", "person"])
    XCTAssertTrue(table.contains("background"))
    XCTAssertTrue(table.contains("person"))
    XCTAssertTrue(table.contains("class 2"))
    XCTAssertTrue(table.contains("mIoU 33.33"))
    XCTAssertTrue(table.contains("pixel accuracy 60.00"))
  }

  /// The counts and scores equal an independent numpy computation on the same data
  /// (per-pair boolean masks rather than a bincount).
  func testMatchesIndependentComputation() throws {
    let c = 6
    let shape = [3, 21, 17]
    let labels = try Tensor.randint(0, c, shape)
    let void = try Tensor.rand(shape) .< 0.1
    let withVoid = try Tensor.where(void, try Tensor.full(shape, 255, dtype: .int64), labels)
    // Mostly right predictions, so that the scores are far from trivial; class 5 never predicted.
    let noise = try Tensor.randint(0, c - 1, shape)
    let keep = try Tensor.rand(shape) .< 0.6
    let predictions = try Tensor.where(keep, try labels.clamp(max: Double(c - 2)), noise)

    var matrix = ConfusionMatrix(numClasses: c)
    try matrix.update(predictions: predictions, labels: withVoid)

    let folder = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    try predictions.data().write(to: folder.appendingPathComponent("pred.bin"))
    try withVoid.data().write(to: folder.appendingPathComponent("gt.bin"))
    let output = try Oracle.run("""
      import json, sys
      import numpy as np
      folder, c = sys.argv[1], int(sys.argv[2])
      pred = np.fromfile(folder + "/pred.bin", dtype="<i8")
      gt = np.fromfile(folder + "/gt.bin", dtype="<i8")
      valid = gt != 255
      cm = np.array([[int(np.sum(valid & (gt == i) & (pred == j))) for j in range(c)] for i in range(c)])
      tp = np.diag(cm).astype(float)
      rows, cols = cm.sum(1).astype(float), cm.sum(0).astype(float)
      union = rows + cols - tp
      iou = [tp[i] / union[i] if union[i] > 0 else None for i in range(c)]
      acc = [tp[i] / rows[i] if rows[i] > 0 else None for i in range(c)]
      print(json.dumps({
        "confusion_matrix": cm.tolist(),
        "per_class_iou": iou,
        "mIoU": float(np.mean([x for x in iou if x is not None])),
        "pixel_accuracy": float(tp.sum() / cm.sum()),
        "mean_accuracy": float(np.mean([x for x in acc if x is not None])),
        "fwIoU": float(sum(rows[i] / cm.sum() * iou[i] for i in range(c) if rows[i] > 0)),
      }))
      """, arguments: [folder.path, String(c)])
    let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
    XCTAssertEqual(matrix.rows.map { $0.map(Int.init) }, expected["confusion_matrix"] as? [[Int]])

    let s = matrix.scores
    let json = try XCTUnwrap(JSONSerialization.jsonObject(with: try s.jsonData()) as? [String: Any])
    for key in ["mIoU", "pixel_accuracy", "mean_accuracy", "fwIoU"] {
      let mine = try XCTUnwrap(json[key] as? Double, key)
      XCTAssertEqual(mine, try XCTUnwrap(expected[key] as? Double, key), accuracy: 1e-12, key)
      XCTAssertTrue((0...1).contains(mine), key)
    }
    let mine = try XCTUnwrap(json["per_class_iou"] as? [Any])
    let theirs = try XCTUnwrap(expected["per_class_iou"] as? [Any])
    XCTAssertEqual(mine.count, c)
    for (a, b) in zip(mine, theirs) {
      if let b = b as? Double {
        XCTAssertEqual(try XCTUnwrap(a as? Double), b, accuracy: 1e-12)
      } else {
        XCTAssertTrue(a is NSNull)
      }
    }
  }
}
