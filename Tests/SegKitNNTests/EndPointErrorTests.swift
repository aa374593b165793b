import Foundation
import SegKitNN
import SegKitTestSupport
import XCTest

/// FlowNet's multi-scale end-point error against a PyTorch construction of the loss
/// as flownet2-pytorch's MultiScale computes it with the L2 norm: the true flow
/// scaled by 1/20, average-pooled to each output, the weighted mean norms.
final class EndPointErrorTests: XCTestCase {
  func testMultiScaleEndPointErrorMatchesTorch() throws {
    Torch.manualSeed(5)
    let flow = try Tensor.randn([2, 2, 64, 128]) * 6
    let predictions = try [16, 8, 4, 2, 1].map { try Tensor.randn([2, 2, $0, 2 * $0]) * 0.3 }
    let inputs = predictions
    let weights = [0.32, 0.08, 0.02, 0.01, 0.005]
    let oracle = try OracleTensors.run(#"""
      inputs = load_inputs()
      flow = inputs["flow"]; weights = [0.32, 0.08, 0.02, 0.01, 0.005]
      outs = [inputs[f"p{i}"].clone().requires_grad_(True) for i in range(5)]
      target = flow * 0.05
      loss = 0
      for i, out in enumerate(outs):
          t = torch.nn.AvgPool2d(4 * 2 ** i, 4 * 2 ** i)(target)
          loss = loss + weights[i] * torch.norm(t - out, p=2, dim=1).mean()
      loss.backward()
      save("loss", loss)
      for i, out in enumerate(outs): save(f"g{i}", out.grad)
      """#, inputs: [("flow", flow)] + inputs.enumerated().map { ("p\($0.offset)", $0.element) })
    let leaves = try inputs.map { try $0.clone().requiresGrad(true) }
    let loss = try multiScaleEndPointError(predictions: leaves, flow: flow, weights: weights, flowScale: 20)
    try loss.backward()
    XCTAssertEqual(try loss.item(), try oracle["loss"].item(), accuracy: 1e-5)
    for (index, leaf) in leaves.enumerated() {
      XCTAssertTrue(try XCTUnwrap(leaf.grad).allClose(try oracle["g\(index)"], rtol: 1e-4, atol: 1e-6), "output \(index)")
    }
    // A predicted vector equal to its target: the norm's gradient is 0 there, not NaN.
    let exact = try (flow / 20).avgPool2d(kernel: Size2(64, 64)).requiresGrad(true)
    try multiScaleEndPointError(predictions: [exact], flow: flow, weights: [1], flowScale: 20).backward()
    XCTAssertEqual(try XCTUnwrap(exact.grad).abs().max().item(), 0)
    XCTAssertThrowsError(try multiScaleEndPointError(predictions: leaves, flow: flow, weights: [1], flowScale: 20))
    XCTAssertThrowsError(try multiScaleEndPointError(predictions: [try Tensor.zeros([2, 2, 5, 5])], flow: flow, weights: [1], flowScale: 20))
  }

  func testEndPointErrorIsTheMeanDistance() throws {
    let predicted = try Tensor([0, 3, 0, 0, 4, 0], shape: [1, 2, 1, 3])
    let truth = try Tensor.zeros([1, 2, 1, 3])
    // Vectors (0, 0), (3, 4), (0, 0): distances 0, 5, 0.
    XCTAssertEqual(try endPointError(predicted, truth).item(), 5.0 / 3, accuracy: 1e-6)
  }
}
