import Foundation
import SegKitInference
import SegKitTestSupport
import XCTest

/// DVSNet's flow path and its regions: warping the key frame's logits by the flow to
/// the key frame, and the merge of overlapping regions by the larger maximum score
/// against a numpy loop over the rule.
final class DynamicKeyFramesTests: XCTestCase {
  func testWarpPathLooksUpTheKeyFrame() throws {
    Torch.manualSeed(41)
    let logits = try Tensor.randn([1, 3, 8, 12])
    // Every pixel's content was one pixel to the right in the key frame.
    let flow = try Tensor.cat([try Tensor.ones([1, 1, 8, 12]), try Tensor.zeros([1, 1, 8, 12])], dim: 1)
    let warped = try WarpPath.scores(keyLogits: logits, flowToKey: flow, size: Size2(8, 12), resolution: .flow)
    XCTAssertTrue(try warped.narrow(dim: 3, start: 0, length: 11).allClose(logits.narrow(dim: 3, start: 1, length: 11), rtol: 1e-5, atol: 1e-5))
    // Outside the key frame: its border (DVSNet clamps), here the last column's values.
    XCTAssertTrue(try warped.narrow(dim: 3, start: 11, length: 1).allClose(logits.narrow(dim: 3, start: 11, length: 1), rtol: 1e-5, atol: 1e-5))
    let scaled = try WarpPath.scores(keyLogits: logits, flowToKey: flow, scale: try Tensor.full([1, 3, 8, 12], 2), size: Size2(16, 24), resolution: .flow)
    XCTAssertEqual(scaled.shape, [1, 3, 16, 24])
    XCTAssertTrue(try scaled.allClose(try (warped * 2).interpolate(size: Size2(16, 24)), rtol: 1e-5, atol: 1e-5))
    XCTAssertThrowsError(try WarpPath.scores(keyLogits: logits, flowToKey: try Tensor.zeros([1, 3, 8, 12]), size: Size2(8, 12)))

    // At the output's resolution: one flow pixel is two output pixels, and full-size key logits keep their detail.
    let fine = try Tensor.randn([1, 3, 16, 24])
    let atOutput = try WarpPath.scores(keyLogits: fine, flowToKey: flow, scale: try Tensor.full([1, 3, 8, 12], 2), size: Size2(16, 24), resolution: .output)
    XCTAssertTrue(try atOutput.narrow(dim: 3, start: 0, length: 22).allClose(try fine.narrow(dim: 3, start: 2, length: 22) * 2, rtol: 1e-5, atol: 1e-5))
  }

  /// DVSNet warps on the finer grid. With nothing moving, the default (`.output`) gives
  /// back the key's labels exactly; resizing full-size logits down to a 4× coarser flow
  /// grid first (`.flow`) loses a person two pixels wide.
  func testWarpOrderKeepsThinObjectsAtDistanceZero() throws {
    var key = [Float](repeating: 0, count: 2 * 32 * 64)
    for y in 0..<32 {
      for x in 0..<64 { key[y * 64 + x] = 1 }  // class 0 (background) everywhere …
      for x in 21...22 { key[32 * 64 + y * 64 + x] = 2 }  // … but class 1 in two columns
    }
    let logits = try Tensor(key, shape: [1, 2, 32, 64])
    let still = try Tensor.zeros([1, 2, 8, 16])
    let truth = try logits.argmax(dim: 1).toArray(Int64.self)
    let atOutput = try WarpPath.scores(keyLogits: logits, flowToKey: still, size: Size2(32, 64)).argmax(dim: 1).toArray(Int64.self)
    XCTAssertEqual(atOutput, truth, "the default warp is exact where nothing moved")
    let atFlow = try WarpPath.scores(keyLogits: logits, flowToKey: still, size: Size2(32, 64), resolution: .flow).argmax(dim: 1)
    XCTAssertLessThan(zip(try atFlow.toArray(Int64.self), truth).filter { $0 == $1 }.count, truth.count, "the coarse warp loses the stripe")
  }

  func testOverlapScalesWithTheFrameAndMayNotSwallowARegion() throws {
    // DVSNet's 64 px of 1024 rows, on 64 rows: 4 px.
    let scaled = try RegionGrid(rows: 2, columns: 2, overlapShare: RegionGrid.dvsnetOverlapShare)
    XCTAssertEqual(try scaled.regions(height: 64, width: 128).map { [$0.top, $0.left, $0.height, $0.width] },
                   [[0, 0, 36, 68], [28, 0, 36, 68], [0, 60, 36, 68], [28, 60, 36, 68]].sorted { ($0[0], $0[1]) < ($1[0], $1[1]) })
    XCTAssertEqual(scaled.overlapPixels(height: 1024), 64)
    // DVSNet's 64 px taken literally on 64×128 frames would make every region the whole frame.
    XCTAssertThrowsError(try RegionGrid(rows: 2, columns: 2, overlap: 64).regions(height: 64, width: 128)) {
      XCTAssertTrue("\($0)".contains("swallow"), "\($0)")
    }
    XCTAssertNoThrow(try RegionGrid(rows: 2, columns: 2, overlap: 16).regions(height: 64, width: 128))
    XCTAssertThrowsError(try RegionGrid(rows: 2, columns: 2, overlap: 17).regions(height: 64, width: 128))
    XCTAssertThrowsError(try RegionGrid(rows: 2, columns: 2, overlapShare: 0.6))
  }

  func testRegionsAndTheirMerge() throws {
    let grid = try RegionGrid(rows: 2, columns: 2, overlap: 8)
    let regions = try grid.regions(height: 40, width: 60)
    XCTAssertEqual(regions.map { [$0.top, $0.left, $0.height, $0.width] },
                   [[0, 0, 28, 38], [0, 22, 28, 38], [12, 0, 28, 38], [12, 22, 28, 38]])
    XCTAssertEqual(try RegionGrid.whole.regions(height: 40, width: 60).map(\.height), [40])
    XCTAssertThrowsError(try RegionGrid(rows: 0, columns: 2, overlap: 8))

    Torch.manualSeed(42)
    let scores = try regions.map { try Tensor.randn([5, $0.height, $0.width]) }
    let merged = try grid.merge(scores, height: 40, width: 60)
    let oracle = try OracleTensors.run(#"""
      inputs = load_inputs()
      regions = [(0, 0, 28, 38), (0, 22, 28, 38), (12, 0, 28, 38), (12, 22, 28, 38)]
      best = np.full((40, 60), -np.inf); labels = np.zeros((40, 60), dtype=np.int64)
      for r, (top, left, h, w) in enumerate(regions):
          s = inputs[f"s{r}"].numpy()
          for y in range(h):
              for x in range(w):
                  m = s[:, y, x].max()
                  if m > best[top + y, left + x]:
                      best[top + y, left + x] = m; labels[top + y, left + x] = s[:, y, x].argmax()
      save("labels", torch.from_numpy(labels))
      """#, inputs: scores.enumerated().map { ("s\($0.offset)", $0.element) })
    XCTAssertEqual(try merged.toArray(Int64.self), try oracle["labels"].toArray(Int64.self))
    XCTAssertThrowsError(try grid.merge(Array(scores.prefix(3)), height: 40, width: 60))
  }
}
