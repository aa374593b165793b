import Foundation
import SegKitNN
import SegKitTestSupport
import XCTest

/// RoI-align against torchvision.ops.roi_align: boxes inside, across and beyond the
/// map's edges, two images, aligned or not, a fractional spatial scale; and its gradient.
final class RoIAlignTests: XCTestCase {
  func testMatchesTorchvision() throws {
    Torch.manualSeed(9)
    let features = try Tensor.randn([2, 3, 13, 17]).requiresGrad(true)
    let boxes = try Tensor([
      [20.0, 16, 140, 90], [-30, -20, 60, 50], [100, 80, 300, 260], [41, 33, 47, 35], [0, 0, 271, 207],
    ].flatMap { $0 }.map { Float($0) }, shape: [5, 4])
    let indices = [0, 1, 1, 0, 1]
    let weights = try Tensor.randn([5, 3, 7, 5])
    let oracle = try OracleTensors.run(#"""
      import torchvision
      inputs = load_inputs()
      x = inputs["features"].requires_grad_(True)
      rois = torch.cat([inputs["indices"][:, None].float(), inputs["boxes"]], 1)
      for aligned in (True, False):
          out = torchvision.ops.roi_align(x, rois, output_size=(7, 5), spatial_scale=1 / 16, sampling_ratio=2, aligned=aligned)
          save(f"out_{aligned}", out)
      (g,) = torch.autograd.grad((out * inputs["weights"]).sum(), x)
      save("grad", g)
      """#, inputs: [("features", features), ("boxes", boxes), ("indices", try Tensor(indices.map { Int64($0) }, shape: [5])),
                     ("weights", weights)])
    for aligned in [true, false] {
      let out = try roiAlign(features, boxes: boxes, batchIndices: indices, outputSize: Size2(7, 5), spatialScale: 1.0 / 16,
                             samplingRatio: 2, aligned: aligned)
      try oracle.expect(out.detach(), "out_\(aligned ? "True" : "False")", atol: 1e-5, rtol: 1e-5)
      if !aligned {
        try (out * weights).sum().backward()
        try oracle.expect(try XCTUnwrap(features.grad), "grad", atol: 1e-5, rtol: 1e-5)
      }
    }
    XCTAssertThrowsError(try roiAlign(features, boxes: boxes, batchIndices: [0, 1, 2, 0, 0], outputSize: Size2(7, 5), spatialScale: 1))
    XCTAssertThrowsError(try roiAlign(features, boxes: try Tensor.zeros([2, 5]), outputSize: Size2(7, 5), spatialScale: 1))
  }
}
