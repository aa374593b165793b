import Foundation
import SegKitMetrics
import SegKitTestSupport
import XCTest

/// DVSNet's confidence score against a numpy computation of its definition.
final class RegionConfidenceTests: XCTestCase {
  func testMatchesNumpy() throws {
    Torch.manualSeed(4)
    let reference = try (Tensor.rand([37, 53]) * 6).floor().to(.int64)
    let labels = try (Tensor.rand([37, 53]) * 6).floor().to(.int64)
    // A band of void in the reference, where agreement does not count.
    let void = try Tensor.arange(Double(37 * 53)).reshape([37, 53]) .< 300.0
    let withVoid = try reference * (void .== 0.0).to(.int64) + void.to(.int64) * 255
    let oracle = try OracleTensors.run(#"""
      inputs = load_inputs()
      pd, gt = inputs["labels"].numpy(), inputs["reference"].numpy()
      weight = (gt != 255).astype(np.float64)
      save("score", torch.tensor(100.0 * (weight * (pd == gt)).sum() / weight.sum(), dtype=torch.float64))
      """#, inputs: [("labels", labels), ("reference", withVoid)])
    let score = try XCTUnwrap(try RegionConfidence.score(labels, reference: withVoid))
    XCTAssertEqual(score, try oracle["score"].item(), accuracy: 1e-9)
    XCTAssertEqual(try RegionConfidence.score(reference, reference: reference), 100)
    XCTAssertNil(try RegionConfidence.score(labels, reference: try Tensor.full([37, 53], 255, dtype: .int64)))
    XCTAssertThrowsError(try RegionConfidence.score(labels, reference: try Tensor.zeros([37, 52]).to(.int64)))
  }
}
