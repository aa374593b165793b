import Foundation
import SegKitInference
import SegKitTestSupport
import XCTest

/// The ablation's flow diagnostic: J of the annotated previous mask warped by the flow
/// and unwarped, against the current annotation.
final class MaskRNNWarpDiagnosticTests: XCTestCase {
  func testExactFlowCarriesTheMasksAndZeroFlowChangesNothing() throws {
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames) = (0, 2, 5)
    (options.width, options.height, options.objects, options.seed) = (48, 32, 2, 11)
    let root = try Oracle.temporaryDirectory("segkit-warp-diagnostic")
    defer { try? FileManager.default.removeItem(at: root) }
    try Synthetic.writeVideo(to: root, options: options)
    let dataset = try VideoDataset.davis2017(root: root, split: "val")

    let exact = try MaskRNNAblation.warpDiagnostic(on: dataset, flow: .exact(root: root), singleObject: false)
    XCTAssertEqual(exact.sequences, 2)
    // Warping by the exact flow puts each object where it is; what it cannot fix is the
    // background an object uncovers, which moves with the pan and so looks up the
    // object's old place (and the objects move about their radius per frame here).
    XCTAssertGreaterThan(exact.warpedJ, exact.unwarpedJ + 0.1, "the flow carries the masks")
    XCTAssertLessThan(exact.unwarpedJ, 0.8, "the objects move")

    let zero = FlowMethod(settings: FlowCache.Settings(method: "zero"), parallel: false) { a, _ in
      try FlowField(width: a.width, height: a.height, values: [Float](repeating: 0, count: 2 * a.width * a.height))
    }
    let still = try MaskRNNAblation.warpDiagnostic(on: dataset, flow: .computed(zero), singleObject: false)
    XCTAssertEqual(still.warpedJ, still.unwarpedJ, accuracy: 1e-12)
    XCTAssertEqual(still.unwarpedJ, exact.unwarpedJ, accuracy: 1e-12)

    XCTAssertEqual(MaskRNNAblation.csv(exact).split(separator: "\n").first, "Previous annotated mask,J-Mean")
    let json = try JSONSerialization.jsonObject(with: try MaskRNNAblation.json([], diagnostic: exact)) as? [String: Any]
    let warp = try XCTUnwrap(json?["flow_warp"] as? [String: Any])
    XCTAssertEqual(try XCTUnwrap(warp["warped_j"] as? Double), exact.warpedJ, accuracy: 1e-12)
    XCTAssertEqual(warp["sequences"] as? Int, 2)
  }
}
