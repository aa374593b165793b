import Foundation
import SegKitData
import SegKitTestSupport
import XCTest

/// Synthetic flow pairs: deterministic, and the flow is the truth: the second frame
/// sampled along it gives the first back wherever the surface stays in view, far
/// closer than the frames are to each other; DIS recovers it on average.
final class SyntheticFlowTests: XCTestCase {
  func testFlowCarriesTheSecondFrameOntoTheFirst() throws {
    let pair = try Synthetic.flowPair(seed: 3, index: 2, width: 96, height: 72)
    let again = try Synthetic.flowPair(seed: 3, index: 2, width: 96, height: 72)
    XCTAssertEqual(pair.first.pixels, again.first.pixels)
    XCTAssertEqual(pair.flow, again.flow)
    XCTAssertNotEqual(try Synthetic.flowPair(seed: 3, index: 3, width: 96, height: 72).flow, pair.flow)

    let flow = try pair.flow.tensor()
    let magnitude = try flow.pow(2).sum(dim: 0).sqrt()
    XCTAssertGreaterThan(try magnitude.mean().item(), 0.5, "the scene moves")
    XCTAssertLessThan(try magnitude.max().item(), 40)

    // second(x + F(x)) against first(x), where x + F(x) stays inside the frame.
    let first = try pair.first.tensor() * 255, second = try pair.second.tensor() * 255
    let warped = try FlowWarp.warp(second, by: flow)
    let (height, width) = (72, 96)
    let xs = try Tensor.arange(0, Double(width)).reshape([1, width]), ys = try Tensor.arange(0, Double(height)).reshape([height, 1])
    let targetX = try flow.select(dim: 0, index: 0) + xs, targetY = try flow.select(dim: 0, index: 1) + ys
    let inside = try ((targetX .>= 1.0) .& (targetX .<= Double(width - 2)) .& (targetY .>= 1.0) .& (targetY .<= Double(height - 2)))
      .to(.float32)
    func meanError(_ a: Tensor, _ b: Tensor) throws -> Double {
      try ((a - b).abs().mean(dim: 0) * inside).sum().item() / inside.sum().item()
    }
    let warpError = try meanError(warped, first), frameError = try meanError(second, first)
    XCTAssertLessThan(warpError, frameError / 3, "warped \(warpError) against unwarped \(frameError)")

    // DIS on the pair: its end-point error is well below the zero-flow baseline's.
    let dis = try OpticalFlow.dis(from: pair.first, to: pair.second, preset: .medium).tensor()
    let endPointError = try (dis - flow).pow(2).sum(dim: 0).sqrt().mean().item()
    XCTAssertLessThan(endPointError, try magnitude.mean().item() / 2)
    print(String(format: "synthetic flow pair: warped error %.2f, unwarped %.2f; DIS end-point error %.3f px, zero flow %.3f px",
                 warpError, frameError, endPointError, try magnitude.mean().item()))
    XCTAssertThrowsError(try Synthetic.flowPair(seed: 0, index: 0, width: 4, height: 72))
  }
}
