import Foundation
import SegKitModels
import SegKitTestSupport
import XCTest

/// MaskRNN's two streams and their fusion against two independent PyTorch OSVOS
/// networks, and the input-channel surgery that makes the appearance stream from an
/// OSVOS parent.
final class MaskRNNTests: XCTestCase {
  /// Smooth inputs at an odd size: a frame, a 0/1 mask, two flow magnitudes.
  func inputs(height: Int = 45, width: Int = 61) throws -> (Tensor, Tensor, Tensor) {
    let image = try Tensor.randn([1, 3, height, width]) * 50
    let mask = try (Tensor.randn([1, 1, height, width]) .> 0).to(.float32)
    let flows = try Tensor.rand([1, 2, height, width]) * 4
    return (image, mask, flows)
  }

  func testStreamsAndFusionMatchPyTorch() throws {
    Torch.manualSeed(7)
    let model = try MaskRNN(encoder: "vgg16", fusion: .sum)
    try OracleModels.drawOrdinaryWeights(try model.stateDict()) { $0.contains("upscale") }
    let (image, mask, flows) = try inputs()
    let state = try model.stateDict()
    XCTAssertTrue(state.contains { $0.0 == "appearance.stages.0.0.weight" && $0.1.shape == [64, 4, 3, 3] })
    XCTAssertTrue(state.contains { $0.0 == "flow.stages.0.0.weight" && $0.1.shape == [64, 3, 3, 3] })
    let oracle = try OracleTensors.run(OracleModels.osvos + "\n" + #"""
      inputs = load_inputs()
      streams = {"appearance": OracleOSVOS(4).eval(), "flow": OracleOSVOS(3).eval()}
      for name, net in streams.items():
          prefix = "state/" + name + "."
          net.load_state_dict({k[len(prefix):]: v for k, v in inputs.items() if k.startswith(prefix)})
      mask = inputs["mask"] * 255 - 128   # tfvos's centring of a 0/255 mask
      with torch.no_grad():
          a = streams["appearance"](torch.cat([inputs["image"], mask], 1))
          f = streams["flow"](torch.cat([inputs["flows"], mask], 1))
      save("appearance", a[0]); save("flow", f[0]); save("out", a[0] + f[0]); save("side5", a[4])
      """#, inputs: [("image", image), ("mask", mask), ("flows", flows)] + state.map { ("state/\($0.0)", $0.1) })
    let output = try Torch.withNoGrad { try model.forward(image: image, warpedMask: mask, flowMagnitudes: flows) }
    try assertMatchesOracle(output.appearance.out, try oracle["appearance"], rtol: 1e-4, atol: 1e-4, "appearance")
    try assertMatchesOracle(output.flow.out, try oracle["flow"], rtol: 1e-4, atol: 1e-4, "flow")
    try assertMatchesOracle(output.appearance.extras["side5"], try oracle["side5"], rtol: 1e-4, atol: 1e-4, "side5")
    try assertMatchesOracle(output.out, try oracle["out"], rtol: 1e-4, atol: 1e-4, "fused")

    // The learned fusion starts as the sum.
    let learned = try MaskRNN(encoder: "vgg16", fusion: .learned)
    try learned.loadStateDict(state + [("fusion.weight", try Tensor.ones([1, 2, 1, 1])), ("fusion.bias", try Tensor.zeros([1]))])
    let fused = try Torch.withNoGrad { try learned.forward(image: image, warpedMask: mask, flowMagnitudes: flows) }
    XCTAssertTrue(try fused.out.allClose(output.out, rtol: 1e-5, atol: 1e-5))
    XCTAssertEqual(try MaskRNN(encoder: "vgg16", fusion: .learned).stateDict().first { $0.0 == "fusion.weight" }?.1.toArray(Float.self), [1, 1])
    XCTAssertThrowsError(try model.forward(image: image, warpedMask: mask, flowMagnitudes: try Tensor.zeros([1, 2, 44, 61])))
  }

  /// Surgery: with its new channel's filters at zero, the appearance stream is the
  /// 3-channel parent whatever the mask; N(0, 0.001) and mean fillings as stated.
  func testSurgeryFromAnOSVOSParent() throws {
    Torch.manualSeed(8)
    let parent = try ModelZoo.make("osvos_resnet18", classes: 1)
    parent.eval()
    try OracleModels.drawOrdinaryWeights(try parent.stateDict()) {
      $0.hasPrefix("upscale") || $0.contains("running_") || $0.hasSuffix("num_batches_tracked")
    }
    let weights = try StateDict(try parent.stateDict())
    let model = try MaskRNN(encoder: "resnet18")
    model.eval()
    try model.loadStreams(from: weights, newChannel: .normal(std: 0))
    let (image, mask, flows) = try inputs()
    let expected = try Torch.withNoGrad { try parent(image).out }
    let output = try Torch.withNoGrad { try model.forward(image: image, warpedMask: mask, flowMagnitudes: flows) }
    try assertMatchesOracle(output.appearance.out, expected, rtol: 1e-5, atol: 1e-5, "appearance with a silent mask channel")

    let key = "appearance.backbone.conv1.weight"
    try model.loadStreams(from: weights, newChannel: .normal(std: 0.001))
    let drawn = try XCTUnwrap(try model.stateDict().first { $0.0 == key }?.1).narrow(dim: 1, start: 3, length: 1)
    XCTAssertLessThan(try drawn.std().item(), 0.002)
    XCTAssertGreaterThan(try drawn.std().item(), 0.0005)
    try model.loadStreams(from: weights, newChannel: .mean)
    let filters = try XCTUnwrap(weights["backbone.conv1.weight"])
    let meanFilled = try XCTUnwrap(try model.stateDict().first { $0.0 == key }?.1).narrow(dim: 1, start: 3, length: 1)
    XCTAssertTrue(try meanFilled.allClose(filters.mean(dim: 1, keepDim: true), rtol: 0, atol: 0))
    XCTAssertThrowsError(try model.loadStreams(from: try StateDict([("x", try Tensor.zeros([1]))])))
    XCTAssertThrowsError(try MaskRNN(encoder: "resnet7"))
  }
}
