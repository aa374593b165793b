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
    try SlowTest.skipInFastTier()
    Torch.manualSeed(7)
    let model = try MaskRNN(encoder: "vgg16", fusion: .sum, localisation: false)
    try OracleModels.drawOrdinaryWeights(try model.stateDict()) { $0.contains("upscale") }
    let (image, mask, flows) = try inputs()
    let state = try model.stateDict()
    XCTAssertTrue(state.contains { $0.0 == "appearance.stages.0.0.weight" && $0.1.shape == [64, 4, 3, 3] })
    XCTAssertTrue(state.contains { $0.0 == "flow.stages.0.0.weight" && $0.1.shape == [64, 3, 3, 3] })
    let oracle = try OracleTensors.run(try OracleModels.osvos() + "\n" + #"""
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
    let learned = try MaskRNN(encoder: "vgg16", fusion: .learned, localisation: false)
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
    let model = try MaskRNN(encoder: "resnet18", localisation: false)
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

  /// The localiser against PyTorch (torchvision's roi_align, two linear layers, Faster
  /// R-CNN's box decoding) on random weights; proposals, targets and gating by hand.
  func testLocaliserMatchesPyTorch() throws {
    try SlowTest.skipInFastTier()
    Torch.manualSeed(10)
    let localiser = try ObjectLocaliser(featureChannels: 8, featureStride: 16, hidden: 32)
    try OracleModels.drawOrdinaryWeights(try localiser.stateDict()) { _ in false }
    let features = try Tensor.randn([2, 8, 6, 9])
    let proposals = try Tensor([10, 12, 80, 70, 30, 5, 140, 96].map { Float($0) }, shape: [2, 4])
    let oracle = try OracleTensors.run(#"""
      import torchvision
      inputs = load_inputs()
      rois = torch.cat([torch.tensor([[0.0], [1.0]]), inputs["proposals"]], 1)
      pooled = torchvision.ops.roi_align(inputs["features"], rois, output_size=(7, 7), spatial_scale=1 / 16, sampling_ratio=2, aligned=True)
      h = torch.relu(pooled.flatten(1) @ inputs["fc1.weight"].T + inputs["fc1.bias"])
      d = h @ inputs["fc2.weight"].T + inputs["fc2.bias"]
      p = inputs["proposals"]
      w, hh = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
      cx, cy = p[:, 0] + w / 2 + d[:, 0] * w, p[:, 1] + hh / 2 + d[:, 1] * hh
      nw, nh = w * torch.exp(d[:, 2]), hh * torch.exp(d[:, 3])
      save("boxes", torch.stack([cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2], 1))
      """#, inputs: [("features", features), ("proposals", proposals)] + (try localiser.stateDict()))
    let boxes = try Torch.withNoGrad { try localiser.forward(features: features, proposals: proposals, batchIndices: [0, 1]) }
    try oracle.expect(boxes, "boxes", atol: 1e-4, rtol: 1e-4)
    let deltas = try ObjectLocaliser.encode(boxes, relativeTo: proposals)
    XCTAssertTrue(try ObjectLocaliser.decode(deltas, relativeTo: proposals).allClose(boxes, rtol: 1e-5, atol: 1e-4))

    // A 3×2 block at rows 4–5, columns 2–4 of a 10×12 mask: box (2, 4, 5, 6), enlarged ×2 about (3.5, 5).
    var values = [Float](repeating: 0, count: 120)
    for y in 4...5 { for x in 2...4 { values[y * 12 + x] = 1 } }
    let mask = try Tensor(values, shape: [10, 12])
    XCTAssertEqual(try ObjectLocaliser.proposal(from: mask, enlargement: 1), [2, 4, 5, 6])
    XCTAssertEqual(try ObjectLocaliser.proposal(from: mask, enlargement: 2), [0.5, 3, 6.5, 7])
    XCTAssertNil(try ObjectLocaliser.proposal(from: try Tensor.zeros([10, 12]), enlargement: 2))
    let gated = try ObjectLocaliser.gate(try Tensor.ones([1, 1, 10, 12]), boxes: try Tensor([Float(2), 4, 5, 6], shape: [1, 4]))
    XCTAssertEqual(try gated.reshape([-1]).toArray(Float.self), values.map { $0 == 1 ? 1 : -20 })
  }

  /// With the localiser (untrained: the proposal itself), logits outside the warped
  /// mask's enlarged box are background.
  func testLocalisationGatesTheFusedLogits() throws {
    Torch.manualSeed(11)
    let model = try MaskRNN(encoder: "resnet18")
    model.eval()
    let image = try Tensor.randn([1, 3, 64, 96])
    var values = [Float](repeating: 0, count: 64 * 96)
    for y in 20..<30 { for x in 40..<60 { values[y * 96 + x] = 1 } }
    let mask = try Tensor(values, shape: [1, 1, 64, 96])
    let output = try Torch.withNoGrad { try model.forward(image: image, warpedMask: mask, flowMagnitudes: try Tensor.zeros([1, 2, 64, 96])) }
    XCTAssertEqual(try XCTUnwrap(output.proposal).toArray(Float.self), [35, 17.5, 65, 32.5])
    XCTAssertTrue(try XCTUnwrap(output.box).allClose(XCTUnwrap(output.proposal), rtol: 0, atol: 1e-4))
    let out = try output.out.squeeze(dim: 0).squeeze(dim: 0)
    XCTAssertEqual(try out[10][10].item(), -20)
    XCTAssertEqual(try out[25][50].item(), try (output.appearance.out + output.flow.out)[0][0][25][50].item(), accuracy: 1e-5)
  }

  /// The gate with an enlargement: the refined box (2, 4, 5, 6) ×2 about its centre
  /// (3.5, 5) is (0.5, 3, 6.5, 7), so pixels with centres in columns 0–5 and rows 3–6
  /// keep their logits and the rest become background.
  func testGateWithAnEnlargedBox() throws {
    let box = try Tensor([Float(2), 4, 5, 6], shape: [1, 4])
    XCTAssertEqual(try ObjectLocaliser.enlarge(box, by: 2).toArray(Float.self), [0.5, 3, 6.5, 7])
    XCTAssertEqual(try ObjectLocaliser.enlarge(box, by: 1).toArray(Float.self), [2, 4, 5, 6])
    let logits = try Tensor.arange(0, 120, dtype: .float32).reshape([1, 1, 10, 12])
    let gated = try ObjectLocaliser.gate(logits, boxes: ObjectLocaliser.enlarge(box, by: 2)).reshape([-1]).toArray(Float.self)
    for y in 0..<10 {
      for x in 0..<12 {
        let inside = (0...5).contains(x) && (3...6).contains(y)
        XCTAssertEqual(gated[y * 12 + x], inside ? Float(y * 12 + x) : -20, "(\(x), \(y))")
      }
    }

    // In MaskRNN (untrained localiser: the refined box is the proposal (35, 17.5, 65, 32.5)),
    // ×1.5 gates with (27.5, 13.75, 72.5, 36.25): column 70 and row 35 keep the fused logits.
    Torch.manualSeed(12)
    let model = try MaskRNN(encoder: "resnet18")
    model.eval()
    model.localiser?.gateEnlargement = 1.5
    XCTAssertEqual(model.localiser?.gateEnlargement, 1.5)
    var values = [Float](repeating: 0, count: 64 * 96)
    for y in 20..<30 { for x in 40..<60 { values[y * 96 + x] = 1 } }
    let output = try Torch.withNoGrad {
      try model.forward(image: try Tensor.randn([1, 3, 64, 96]), warpedMask: try Tensor(values, shape: [1, 1, 64, 96]),
                        flowMagnitudes: try Tensor.zeros([1, 2, 64, 96]))
    }
    let (out, fused) = (try output.out[0][0], try output.fused[0][0])
    XCTAssertEqual(try out[35][70].item(), try fused[35][70].item(), accuracy: 1e-6)
    XCTAssertEqual(try out[14][28].item(), try fused[14][28].item(), accuracy: 1e-6)
    XCTAssertEqual(try out[13][50].item(), -20)
    XCTAssertEqual(try out[36][50].item(), -20)
    XCTAssertEqual(try out[25][73].item(), -20)
  }

  /// A localiser on layer3 (ResNet-18: 256 channels at stride 16): its head's input
  /// follows, it runs, and its weights load back into a layer3 MaskRNN (found from
  /// the weights) with the same output; a layer4 MaskRNN refuses them.
  func testLayer3LocaliserBuildsRunsAndRoundTrips() throws {
    Torch.manualSeed(13)
    let model = try MaskRNN(encoder: "resnet18", localiserFeatures: .layer3)
    model.eval()
    model.localiser?.gateEnlargement = 1.25
    let localiser = try XCTUnwrap(model.localiser)
    XCTAssertEqual(localiser.featureLevel, 3)
    XCTAssertEqual(localiser.featureStride, 16)
    let state = try StateDict(try model.stateDict())
    XCTAssertEqual(state["localiser.fc1.weight"]?.shape, [1024, 256 * 49])
    XCTAssertEqual(try MaskRNN(encoder: "resnet18").stateDict().first { $0.0 == "localiser.fc1.weight" }?.1.shape, [1024, 512 * 49])
    // fc2 starts at zero; random deltas make the refined box depend on the layer3 features.
    try Torch.withNoGrad {
      for (name, tensor) in try localiser.stateDict() where name.hasPrefix("fc2.") { try tensor.copy_(try Tensor.randn(tensor.shape) * 0.01) }
    }
    var values = [Float](repeating: 0, count: 64 * 96)
    for y in 20..<30 { for x in 40..<60 { values[y * 96 + x] = 1 } }
    let (image, mask, flows) = (try Tensor.randn([1, 3, 64, 96]), try Tensor(values, shape: [1, 1, 64, 96]), try Tensor.rand([1, 2, 64, 96]))
    let output = try Torch.withNoGrad { try model.forward(image: image, warpedMask: mask, flowMagnitudes: flows) }
    XCTAssertEqual(output.out.shape, [1, 1, 64, 96])
    XCTAssertNotNil(output.box)

    let file = try Oracle.temporaryDirectory().appendingPathComponent("layer3.safetensors")
    try StateDict(try model.stateDict()).save(to: file)
    let saved = try StateDict.load(contentsOf: file)
    XCTAssertEqual(try MaskRNN.localiserFeatures(of: saved), .layer3)
    let loaded = try MaskRNN.matching(saved, encoder: "resnet18")
    try loaded.load(saved)
    loaded.eval()
    XCTAssertEqual(loaded.localiser?.featureLevel, 3)
    XCTAssertEqual(loaded.localiser?.gateEnlargement, 1.25)
    let again = try Torch.withNoGrad { try loaded.forward(image: image, warpedMask: mask, flowMagnitudes: flows) }
    XCTAssertTrue(try again.out.allClose(output.out, rtol: 1e-5, atol: 1e-5))
    XCTAssertTrue(try XCTUnwrap(again.box).allClose(XCTUnwrap(output.box), rtol: 1e-5, atol: 1e-5))
    XCTAssertThrowsError(try MaskRNN(encoder: "resnet18").load(saved)) { error in
      XCTAssertTrue("\(error)".contains("reads layer3 features"), "\(error)")
    }
    // Weights from before the level was kept read layer4.
    let older = try StateDict(try MaskRNN(encoder: "resnet18").stateDict().filter { !$0.0.hasSuffix("feature_level") && !$0.0.hasSuffix("gate_enlargement") })
    XCTAssertEqual(try MaskRNN.localiserFeatures(of: older), .layer4)
    XCTAssertNoThrow(try MaskRNN.matching(older, encoder: "resnet18").load(older))
  }
}
