import Foundation
import SegKitModels
import SegKitTestSupport
import XCTest

/// `osvos_vgg16` against an independent PyTorch construction of OSVOS from its
/// description (stages, side preparation, side scores, bilinear transposed
/// convolutions, centre crops, fuse), with OSVOS-PyTorch's state-dict keys.
final class OSVOSTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  /// Runs the oracle's OSVOS over `encoder` on `image` with `model`'s weights; checks
  /// that the two state dicts have the same keys (in the same order) and that all five
  /// outputs agree within 1e-4. Returns the oracle's outputs.
  @discardableResult
  func compareWithOracle(_ model: any SegmentationNetwork, encoder: String, image: Tensor) throws -> OracleTensors {
    let inputs = [("image", image)] + (try model.stateDict()).map { ("state/\($0.0)", $0.1) }
    let oracle = try OracleTensors.run(try OracleModels.osvos() + "\n" + #"""
      inputs = load_inputs()
      net = OracleOSVOS(encoder="\#(encoder)").eval()
      state = {k[len("state/"):]: v for k, v in inputs.items() if k.startswith("state/")}
      save_meta({"keys": list(net.state_dict().keys()),
                 "missing": sorted(set(net.state_dict()) - set(state)), "unexpected": sorted(set(state) - set(net.state_dict()))})
      net.load_state_dict(state)
      with torch.no_grad():
          outputs = net(inputs["image"])
      for name, t in zip(["out", "side2", "side3", "side4", "side5"], outputs):
          save(name, t)
      """#, inputs: inputs)
    XCTAssertEqual(oracle.meta["missing"] as? [String], [])
    XCTAssertEqual(oracle.meta["unexpected"] as? [String], [])
    XCTAssertEqual(oracle.meta["keys"] as? [String], try model.stateDict().map(\.0), "the state dict lists the keys in OSVOS-PyTorch's order")
    let output = try Torch.withNoGrad { try model(image) }
    XCTAssertEqual(model.outputNames, ["out", "side2", "side3", "side4", "side5"])
    try assertMatchesOracle(output.out, try oracle["out"], rtol: 1e-4, atol: 1e-4, "out")
    for side in ["side2", "side3", "side4", "side5"] {
      XCTAssertEqual(output.extras[side]?.shape, image.shape.prefix(1) + [1] + image.shape.suffix(2), side)
      try assertMatchesOracle(output.extras[side], try oracle[side], rtol: 1e-4, atol: 1e-4, side)
    }
    return oracle
  }

  func testForwardMatchesPyTorch() throws {
    Torch.manualSeed(3)
    let model = try ModelZoo.make("osvos_vgg16", classes: 1)
    try OracleModels.drawOrdinaryWeights(try model.stateDict()) { $0.hasPrefix("upscale") }
    try compareWithOracle(model, encoder: "vgg16", image: try Tensor.randn([1, 3, 97, 131]))
  }

  /// The upsampling is bilinear and frozen; torchvision's vgg16 checkpoint fills the
  /// stages (conv1_1 refitted); inputs are Caffe's BGR minus means.
  func testInitialisationAndCheckpoints() throws {
    let model = try ModelZoo.make("osvos_vgg16", classes: 1)
    let state = Dictionary(uniqueKeysWithValues: try model.stateDict())
    let upscale = try XCTUnwrap(state["upscale.0.weight"])
    XCTAssertEqual(upscale.shape, [16, 16, 4, 4])
    XCTAssertEqual(try upscale[0][0][0].toArray(Float.self), [0.0625, 0.1875, 0.1875, 0.0625])
    XCTAssertEqual(try upscale[0][1].abs().sum().item(), 0)
    XCTAssertFalse(upscale.requiresGrad)
    XCTAssertEqual(state["upscale_.3.weight"]?.shape, [1, 1, 32, 32])
    XCTAssertFalse(model.parameters().contains { $0.shape == [1, 1, 32, 32] && $0.requiresGrad })
    XCTAssertEqual(model.inputNormalization.channelOrder, .bgr)
    XCTAssertEqual(model.inputNormalization.mean, [104.00699, 116.66877, 122.67892])
    XCTAssertThrowsError(try ModelZoo.make("osvos_vgg16", classes: 21))
    XCTAssertEqual(ModelZoo.fixedClasses(of: "osvos_vgg16"), 1)

    let oracle = try OracleTensors.run(#"""
      import torchvision
      save_state("vgg", torchvision.models.vgg16(weights=None))
      """#)
    let vgg = try StateDict(try oracle.entries(under: "vgg"))
    try ModelZoo.loadWeights(vgg, into: model)
    let loaded = Dictionary(uniqueKeysWithValues: try model.stateDict())
    // conv1_1 is refitted to Caffe's input (testImageNetInitialisationKeepsTorchvisionFeatures).
    XCTAssertFalse(try loaded["stages.0.0.weight"]!.allClose(vgg["features.0.weight"]!, rtol: 1e-3, atol: 0))
    let pairs = [("features.2", "stages.0.2"), ("features.5", "stages.1.1"),
                 ("features.7", "stages.1.3"), ("features.10", "stages.2.1"), ("features.14", "stages.2.5"),
                 ("features.17", "stages.3.1"), ("features.24", "stages.4.1"), ("features.28", "stages.4.5")]
    for (torchvision, osvos) in pairs {
      for suffix in [".weight", ".bias"] {
        XCTAssertTrue(try loaded[osvos + suffix]!.allClose(vgg[torchvision + suffix]!, rtol: 0, atol: 0), osvos + suffix)
      }
    }
  }

  /// torchvision's vgg16 (made for RGB in [0, 1] minus ImageNet's mean over its std)
  /// loaded into `osvos_vgg16` (Caffe's BGR 0–255 minus Caffe's means) has conv1_1
  /// refitted, so that the same picture gives torchvision's features. Away from the
  /// border conv1_1 agrees exactly; its zero padding stands for the mean pixel of
  /// each normalisation (ImageNet's and Caffe's differ by up to one grey level), which
  /// moves conv5_3 slightly. Without the refit conv5_3 is far off (the input scale
  /// alone is ≈58×).
  func testImageNetInitialisationKeepsTorchvisionFeatures() throws {
    Torch.manualSeed(11)
    let pixels = try (Tensor.rand([1, 3, 48, 64]) * 255).round()  // RGB 0–255; sides divisible by 16
    let oracle = try OracleTensors.run(#"""
      import torchvision
      vgg = torchvision.models.vgg16(weights=None).eval()
      for m in vgg.features:
          if isinstance(m, nn.Conv2d): m.bias.data.uniform_(-0.5, 0.5)  # the bias refit matters too
      save_state("vgg", vgg)
      pixels = load_inputs()["pixels"]
      mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
      x = (pixels / 255 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
      with torch.no_grad():
          save("conv1_1 valid", F.conv2d(x, vgg.features[0].weight, vgg.features[0].bias))
          save("conv5_3", vgg.features[:30](x))  # after its ReLU, before pool5
      """#, inputs: [("pixels", pixels)])
    let vgg = try StateDict(try oracle.entries(under: "vgg"))
    let model = try ModelZoo.make("osvos_vgg16", classes: 1)
    try ModelZoo.loadWeights(vgg, into: model)
    model.eval()
    let caffe = try pixels.flip([1]) - Tensor([104.00699, 116.66877, 122.67892] as [Float], shape: [1, 3, 1, 1])
    let state = Dictionary(uniqueKeysWithValues: try model.stateDict())
    let conv11 = try caffe.conv2d(weight: state["stages.0.0.weight"]!, bias: state["stages.0.0.bias"]!)
    try oracle.expect(conv11, "conv1_1 valid", atol: 1e-4, rtol: 1e-4)

    let expected = try oracle["conv5_3"]
    let conv53 = try Torch.withNoGrad { try model.encoder.features(caffe)[3] }
    XCTAssertEqual(conv53.shape, expected.shape)
    let scale = try expected.abs().max().item()
    let error = try (conv53 - expected).abs().max().item() / scale
    XCTAssertGreaterThan(scale, 0)
    XCTAssertLessThan(error, 1e-3, "conv5_3: max error \(error) of the largest feature")
  }

  /// OSVOS's figure over ResNet-18 against PyTorch (the oracle's `encoder="resnet18"`):
  /// torchvision's resnet18 as the backbone, its layer1–layer4 (strides 4–32) as the
  /// side levels, each upsampled by a transposed convolution of stride s and kernel 2s,
  /// centre-cropped, fused.
  func testOverAnotherEncoderMatchesPyTorch() throws {
    Torch.manualSeed(5)
    let model = try ModelZoo.make("osvos_resnet18", classes: 1)
    model.eval()
    try OracleModels.drawOrdinaryWeights(try model.stateDict()) {
      $0.hasPrefix("upscale") || $0.contains("running_") || $0.hasSuffix("num_batches_tracked")
    }
    XCTAssertEqual(model.inputNormalization.channelOrder, .rgb)
    XCTAssertEqual(model.encoderKeyPrefix, "backbone.")
    let image = try Tensor.randn([1, 3, 75, 101])
    let oracle = try compareWithOracle(model, encoder: "resnet18", image: image)
    // Folding the batch norms for inference keeps the outputs.
    try model.optimizeForInference(channelsLast: false)
    let folded = try Torch.withNoGrad { try model(image) }
    try assertMatchesOracle(folded.out, try oracle["out"], rtol: 1e-4, atol: 1e-4, "out after folding")
  }
}
