import Foundation
import SegKitMetrics
import SegKitTestSupport
import XCTest

/// DAVIS J and F against the benchmark's reference code, rewritten here without
/// OpenCV and skimage: `seg2bmap` verbatim, skimage's `disk` in numpy and the
/// dilation by scipy.ndimage (cv2.dilate with a symmetric kernel and no border is the same).
final class DAVISTests: XCTestCase {
  static let reference = """
    import json, sys
    import numpy as np
    from scipy.ndimage import binary_dilation

    def disk(radius):
        L = np.arange(-radius, radius + 1)
        X, Y = np.meshgrid(L, L)
        return (X ** 2 + Y ** 2) <= radius ** 2

    def seg2bmap(seg):
        seg = seg.astype(bool)
        e = np.zeros_like(seg); s = np.zeros_like(seg); se = np.zeros_like(seg)
        e[:, :-1] = seg[:, 1:]
        s[:-1, :] = seg[1:, :]
        se[:-1, :-1] = seg[1:, 1:]
        b = seg ^ e | seg ^ s | seg ^ se
        b[-1, :] = seg[-1, :] ^ e[-1, :]
        b[:, -1] = seg[:, -1] ^ s[:, -1]
        b[-1, -1] = 0
        return b

    def f_measure(foreground_mask, gt_mask, void_pixels, bound_th):
        bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(foreground_mask.shape))
        fg_boundary = seg2bmap(foreground_mask * np.logical_not(void_pixels))
        gt_boundary = seg2bmap(gt_mask * np.logical_not(void_pixels))
        fg_dil = binary_dilation(fg_boundary, disk(int(bound_pix)))
        gt_dil = binary_dilation(gt_boundary, disk(int(bound_pix)))
        gt_match = gt_boundary * fg_dil
        fg_match = fg_boundary * gt_dil
        n_fg = np.sum(fg_boundary)
        n_gt = np.sum(gt_boundary)
        if n_fg == 0 and n_gt > 0:
            precision, recall = 1, 0
        elif n_fg > 0 and n_gt == 0:
            precision, recall = 0, 1
        elif n_fg == 0 and n_gt == 0:
            precision, recall = 1, 1
        else:
            precision = np.sum(fg_match) / float(n_fg)
            recall = np.sum(gt_match) / float(n_gt)
        return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)

    def db_eval_iou(annotation, segmentation, void_pixels):
        inters = np.sum((segmentation & annotation) & np.logical_not(void_pixels))
        union = np.sum((segmentation | annotation) & np.logical_not(void_pixels))
        return 1.0 if np.isclose(union, 0) else inters / union

    def db_statistics(per_frame_values):
        M = np.nanmean(per_frame_values)
        O = np.nanmean(per_frame_values > 0.5)
        ids = np.round(np.linspace(1, len(per_frame_values), 5) + 1e-10) - 1
        ids = ids.astype(np.uint8)
        D_bins = [per_frame_values[ids[i]:ids[i + 1] + 1] for i in range(0, 4)]
        D = np.nanmean(D_bins[0]) - np.nanmean(D_bins[3])
        return M, O, D

    folder, h, w, n, th = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    load = lambda name: np.fromfile(folder + "/" + name, dtype=np.uint8).reshape(n, h, w).astype(bool)
    pred, gt, void = load("pred.bin"), load("gt.bin"), load("void.bin")
    J = np.array([db_eval_iou(gt[i], pred[i], void[i]) for i in range(n)])
    F = np.array([f_measure(pred[i], gt[i], void[i], th) for i in range(n)])
    stats = {k: [float(x) for x in db_statistics(v)] for k, v in (("J", J), ("F", F))}
    print(json.dumps({"J": J.tolist(), "F": F.tolist(), "stats": stats}))
    """

  /// Deterministic blobby masks: a few ellipses whose centres drift from frame to frame.
  func sequence(frames: Int, height: Int, width: Int, seed: UInt64) throws -> [BinaryMask] {
    var state = seed
    func random() -> Double {
      state = state &* 6364136223846793005 &+ 1442695040888963407
      return Double(state >> 11) / Double(1 << 53)
    }
    let blobs = (0..<3).map { _ in
      (y: random() * Double(height), x: random() * Double(width), ry: 3 + random() * Double(height) / 4,
       rx: 3 + random() * Double(width) / 4, dy: random() * 4 - 2, dx: random() * 4 - 2)
    }
    return try (0..<frames).map { t in
      var values = [Bool](repeating: false, count: height * width)
      for b in blobs {
        let cy = b.y + b.dy * Double(t)
        let cx = b.x + b.dx * Double(t)
        for y in 0..<height {
          for x in 0..<width {
            let u = (Double(y) - cy) / b.ry
            let v = (Double(x) - cx) / b.rx
            if u * u + v * v <= 1 { values[y * width + x] = true }
          }
        }
      }
      return try BinaryMask(height: height, width: width, values: values)
    }
  }

  func compareWithReference(height: Int, width: Int, frames: Int, tolerance: Double, withVoid: Bool) throws {
    let truth = try sequence(frames: frames, height: height, width: width, seed: 1)
    var predictions = try sequence(frames: frames, height: height, width: width, seed: 2)
    // Some frames close to the truth, one empty, so that every branch of F is reached.
    predictions[1] = truth[1]
    predictions[2] = try BinaryMask(height: height, width: width, values: truth[2].values.enumerated().map {
      $0.offset % 37 == 0 ? !$0.element : $0.element
    })
    predictions[3] = try BinaryMask(height: height, width: width, values: [Bool](repeating: false, count: height * width))
    let void = try (0..<frames).map { t -> BinaryMask in
      let values = (0..<(height * width)).map { (i: Int) -> Bool in
        let (y, x) = (i / width, i % width)
        return withVoid && (y + t) % 11 == 0 && x < width / 3
      }
      return try BinaryMask(height: height, width: width, values: values)
    }

    let folder = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    for (name, masks) in [("pred.bin", predictions), ("gt.bin", truth), ("void.bin", void)] {
      try Data(masks.flatMap { $0.values.map { $0 ? UInt8(1) : 0 } }).write(to: folder.appendingPathComponent(name))
    }
    let output = try Oracle.run(Self.reference, arguments: [
      folder.path, String(height), String(width), String(frames), String(tolerance),
    ])
    struct Reference: Decodable {
      let J: [Double]
      let F: [Double]
      let stats: [String: [Double]]
    }
    let expected = try JSONDecoder().decode(Reference.self, from: Data(output.utf8))

    let scores = try DAVIS.evaluateSequence(
      predictions: predictions, groundTruth: truth, void: void, excludeFirstAndLast: false, tolerance: tolerance)
    XCTAssertEqual(scores.perFrameJ.count, frames)
    for t in 0..<frames {
      XCTAssertEqual(scores.perFrameJ[t], expected.J[t], accuracy: 1e-12, "J, frame \(t)")
      XCTAssertEqual(scores.perFrameF[t], expected.F[t], accuracy: 1e-12, "F, frame \(t)")
    }
    for (name, mine) in [("J", scores.j), ("F", scores.f)] {
      let theirs = try XCTUnwrap(expected.stats[name])
      XCTAssertEqual(mine.mean, theirs[0], accuracy: 1e-12, "\(name) mean")
      XCTAssertEqual(mine.recall, theirs[1], accuracy: 1e-12, "\(name) recall")
      XCTAssertEqual(mine.decay, theirs[2], accuracy: 1e-12, "\(name) decay")
    }
    // The comparison means something only if the frames differ in score.
    XCTAssertGreaterThan(Set(scores.perFrameF).count, 3)
  }

  /// 90×160: r = ceil(0.008 · 183.6) = 2.
  func testMatchesReferenceWithRelativeTolerance() throws {
    try compareWithReference(height: 90, width: 160, frames: 9, tolerance: 0.008, withVoid: false)
  }

  func testMatchesReferenceWithVoidAndAbsoluteRadius() throws {
    try compareWithReference(height: 48, width: 64, frames: 6, tolerance: 4, withVoid: true)
  }

  func testEdgeCases() throws {
    let empty = try BinaryMask(height: 4, width: 5, values: [Bool](repeating: false, count: 20))
    var square = empty
    for y in 1...2 { for x in 1...3 { square.values[y * 5 + x] = true } }
    XCTAssertEqual(try DAVIS.regionSimilarity(prediction: empty, groundTruth: empty), 1)
    XCTAssertEqual(try DAVIS.regionSimilarity(prediction: empty, groundTruth: square), 0)
    XCTAssertEqual(try DAVIS.boundaryMatch(prediction: empty, groundTruth: empty),
                   DAVIS.BoundaryMatch(precision: 1, recall: 1, f: 1))
    XCTAssertEqual(try DAVIS.boundaryMatch(prediction: empty, groundTruth: square),
                   DAVIS.BoundaryMatch(precision: 1, recall: 0, f: 0))
    XCTAssertEqual(try DAVIS.boundaryAccuracy(prediction: square, groundTruth: square), 1)
    // From a tensor: non-zero is foreground.
    let tensor = try Tensor(square.values.map { $0 ? Int64(3) : 0 }, shape: [1, 4, 5])
    XCTAssertEqual(try BinaryMask(tensor), square)
    XCTAssertThrowsError(try DAVIS.regionSimilarity(
      prediction: square, groundTruth: try BinaryMask(height: 5, width: 4, values: [Bool](repeating: false, count: 20))))
    XCTAssertThrowsError(try DAVIS.evaluateSequence(predictions: [square, square], groundTruth: [square, square]))
  }

  /// Hand-checked decay bins: for 10 frames linspace(1, 10, 5) = [1, 3.25, 5.5, 7.75, 10], so ids = [0, 2, 5, 7, 9].
  func testStatistics() {
    let values: [Double] = [1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]
    let s = DAVIS.Statistics(perFrame: values)
    XCTAssertEqual(s.mean, 0.55, accuracy: 1e-12)
    XCTAssertEqual(s.recall, 0.5, accuracy: 1e-12)
    XCTAssertEqual(s.decay, (1 + 0.9 + 0.8) / 3 - (0.3 + 0.2 + 0.1) / 3, accuracy: 1e-12)
    XCTAssertEqual(DAVIS.Statistics(perFrame: [0.7]).decay, 0)
  }
}
