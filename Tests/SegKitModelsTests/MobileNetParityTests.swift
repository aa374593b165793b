import Foundation
import SegKitModels
import SegKitTestSupport
import XCTest

/// MobileNet encoders and torchvision's MobileNetV3 segmentation models against
/// torchvision: random weights, random batch-norm statistics, eval mode, a random
/// image of an odd size.
final class MobileNetParityTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  static let segmentationScript = """
    import sys, torch, torchvision
    from safetensors.torch import save_file
    \(Oracle.randomizeNorm)
    name, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    kwargs = {"aux_loss": True} if name.startswith("deeplabv3") else {}
    model = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None, num_classes=5, **kwargs).eval()
    randomize_norm(model)
    x = torch.randn(1, 3, 97, 131)
    with torch.no_grad():
        y = model(x)
    torch.save(model.state_dict(), out + "/model.pth")
    save_file({"input": x, **{k: v.contiguous() for k, v in y.items()}}, out + "/io.safetensors")
    """

  /// The classification model's state dict, and the output of every block of `features`
  /// as `os32.N`; for MobileNetV3 also those of torchvision's dilated variant as `os16.N`.
  static let encoderScript = """
    import sys, torch, torchvision
    from safetensors.torch import save_file
    \(Oracle.randomizeNorm)
    arch, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    build = getattr(torchvision.models, arch)
    model = build(weights=None).eval()
    randomize_norm(model)
    x = torch.randn(1, 3, 97, 131)
    tensors = {"input": x}
    variants = {"os32": model}
    if arch == "mobilenet_v3_large":
        variants["os16"] = build(weights=None, dilated=True).eval()
        variants["os16"].load_state_dict(model.state_dict())
    with torch.no_grad():
        for prefix, variant in variants.items():
            h = x
            for i, block in enumerate(variant.features):
                h = block(h)
                tensors[f"{prefix}.{i}"] = h.contiguous()
    torch.save(model.state_dict(), out + "/model.pth")
    save_file(tensors, out + "/io.safetensors")
    """

  func maxError(_ got: Tensor, _ expected: Tensor) throws -> Double {
    try (got - expected).abs().max().item()
  }

  // MARK: Segmentation models

  func checkSegmentationParity(_ name: String, keys: [String]) throws {
    let dir = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try Oracle.run(Self.segmentationScript, arguments: [name, dir.path])
    let model = try ModelZoo.make(name, classes: 5)
    try model.loadStateDict(StateDict.load(contentsOf: dir.appendingPathComponent("model.pth")))
    model.eval()
    let io = try StateDict.load(contentsOf: dir.appendingPathComponent("io.safetensors"))
    let output = try Torch.withNoGrad { try model(io["input"]!) }
    try assertMatches(output, io, keys: keys, name, tolerance: 1e-4)
    // The fast path (batch norm folded, channels-last, inference mode) computes the same function.
    try model.optimizeForInference()
    let optimized = try Torch.withInferenceMode { try model(io["input"]!) }
    try assertMatches(optimized, io, keys: keys, "\(name) optimized", relativeTolerance: 1e-5)
  }

  func assertMatches(
    _ output: SegmentationOutput, _ io: StateDict, keys: [String], _ label: String, tolerance: Double = 0,
    relativeTolerance: Double = 0
  ) throws {
    XCTAssertEqual(output.aux == nil, !keys.contains("aux"), "\(label): auxiliary output")
    for key in keys {
      guard let got = key == "out" ? output.out : output.aux else { continue }
      let expected = io[key]!
      XCTAssertEqual(got.shape, expected.shape, "\(label) \(key) shape")
      let error = try maxError(got, expected)
      let bound = tolerance + relativeTolerance * (try expected.abs().max().item())
      XCTAssertLessThan(error, bound, "\(label) \(key): max abs error \(error)")
    }
  }

  func testDeepLabV3MobileNetV3Large() throws {
    try checkSegmentationParity("deeplabv3_mobilenet_v3_large", keys: ["out", "aux"])
  }

  func testLRASPPMobileNetV3Large() throws {
    try checkSegmentationParity("lraspp_mobilenet_v3_large", keys: ["out"])
  }

  // MARK: Encoders against torchvision's classification models

  /// Runs the encoder script for `arch` and hands over its outputs, after loading
  /// its classification checkpoint into each of `encoders`.
  func withClassificationOracle(_ arch: String, encoders: [any Encoder], _ body: (StateDict) throws -> Void) throws {
    let dir = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try Oracle.run(Self.encoderScript, arguments: [arch, dir.path])
    let checkpoint = try StateDict.load(contentsOf: dir.appendingPathComponent("model.pth"))
    XCTAssertTrue(checkpoint.names.contains { $0.hasPrefix("classifier.") }, "the checkpoint has a classifier to drop")
    for encoder in encoders {
      let report = try encoder.loadClassificationCheckpoint(checkpoint)
      XCTAssertEqual(report.loaded.count, try encoder.stateDict().count)
      encoder.eval()
    }
    try body(StateDict.load(contentsOf: dir.appendingPathComponent("io.safetensors")))
  }

  func checkFeatures(_ encoder: any Encoder, indices: [Int], against io: StateDict, prefix: String) throws {
    let features = try Torch.withNoGrad { try encoder.features(io["input"]!) }
    XCTAssertEqual(features.count, 4)
    XCTAssertEqual(features.map { $0.shape[1] }, encoder.featureChannels)
    for (feature, index) in zip(features, indices) {
      let expected = io["\(prefix).\(index)"]!
      XCTAssertEqual(feature.shape, expected.shape, "\(prefix) block \(index) shape")
      let error = try maxError(feature, expected)
      XCTAssertLessThan(error, 1e-4, "\(prefix) block \(index): max abs error \(error)")
    }
  }

  func testMobileNetV2Features() throws {
    let encoder = try MobileNetV2()
    XCTAssertEqual(encoder.featureIndices, [3, 6, 13, 18])
    XCTAssertEqual(encoder.featureChannels, [24, 32, 96, 1280])
    try withClassificationOracle("mobilenet_v2", encoders: [encoder]) { io in
      try checkFeatures(encoder, indices: encoder.featureIndices, against: io, prefix: "os32")
    }
  }

  func testMobileNetV3LargeFeatures() throws {
    let encoder = try MobileNetV3Large()
    XCTAssertEqual(encoder.featureIndices, [3, 6, 12, 16])
    XCTAssertEqual(encoder.featureChannels, [24, 40, 112, 960])
    let taps = MobileNetV3Large.torchvisionSegmentationFeatureIndices
    let tapped = try MobileNetV3Large(featureIndices: taps)
    let dilated = try MobileNetV3Large(outputStride: 16, featureIndices: taps)
    try withClassificationOracle("mobilenet_v3_large", encoders: [encoder, tapped, dilated]) { io in
      try checkFeatures(encoder, indices: encoder.featureIndices, against: io, prefix: "os32")
      try checkFeatures(tapped, indices: taps, against: io, prefix: "os32")
      // torchvision's mobilenet_v3_large(dilated=True), the segmentation backbone.
      try checkFeatures(dilated, indices: taps, against: io, prefix: "os16")
    }
  }

  // MARK: Output strides torchvision does not offer

  /// The encoder at `outputStride` shares the weights of the one at stride 32: the
  /// features before the dilated stages must be the same, the later ones keep the
  /// finer resolution, and gradients reach the first convolution.
  func checkDilated(_ make: (Int) throws -> any Encoder, outputStride: Int) throws {
    let reference = try make(32), encoder = try make(outputStride)
    try encoder.loadStateDict(reference.stateDict())
    reference.eval()
    encoder.eval()
    let x = try Tensor.randn([1, 3, 97, 131])
    let expected = try Torch.withNoGrad { try reference.features(x) }
    let features = try Torch.withNoGrad { try encoder.features(x) }
    // 97×131 at strides 4, 8, 16, 32: 25×33, 13×17, 7×9, 4×5.
    let sizes = [[25, 33], [13, 17], [7, 9], [4, 5]]
    let undilated = [8: 2, 16: 3, 32: 4][outputStride]!  // features before the first dilated stage
    for (index, feature) in features.enumerated() {
      XCTAssertEqual(Array(feature.shape[2...]), sizes[min(index, undilated - 1)], "OS \(outputStride) feature \(index)")
      XCTAssertEqual(feature.shape[1], encoder.featureChannels[index])
      if index < undilated {
        XCTAssertLessThan(try maxError(feature, expected[index]), 1e-5, "OS \(outputStride) feature \(index)")
      }
    }
    encoder.train()
    try encoder.features(x).last!.sum().backward()
    let grad = try XCTUnwrap(encoder.parameters().first?.grad, "no gradient at the first convolution")
    XCTAssertGreaterThan(try grad.abs().sum().item(), 0)
    XCTAssertTrue(try grad.isFinite().all().item() != 0)
  }

  func testMobileNetV2Dilated() throws {
    for outputStride in [16, 8] {
      try checkDilated({ try MobileNetV2(outputStride: $0) }, outputStride: outputStride)
    }
  }

  func testMobileNetV3LargeOutputStride8() throws {
    try checkDilated({ try MobileNetV3Large(outputStride: $0) }, outputStride: 8)
  }

  // MARK: More input channels

  /// A 4-channel encoder loaded from an RGB checkpoint: the extra input filter is the
  /// mean of the RGB ones, so the network on (r, g, b, m) equals the RGB network on
  /// (r + m/3, g + m/3, b + m/3).
  func checkExtraInputChannel(_ make: (Int) throws -> any Encoder) throws {
    let rgb = try make(3), rgbm = try make(4)
    // He initialisation keeps the deepest features far from zero, so the comparison means something.
    for case let conv as Conv2d in rgb.modules() { try Init.kaimingNormal_(conv.weight, nonlinearity: .relu) }
    // The RGB encoder's weights under classification names, with a classifier to drop.
    var checkpoint = try StateDict(rgb.stateDict().map { ("features.\($0.0)", $0.1) })
    checkpoint.set("classifier.1.weight", try Tensor.randn([1000, 1280]))
    try rgbm.loadClassificationCheckpoint(checkpoint)
    rgb.eval()
    rgbm.eval()

    let filters = try XCTUnwrap(rgbm.stateDict().first { $0.0 == rgbm.inputConvolutionKey }?.1)
    XCTAssertEqual(filters.shape[1], 4)
    let rgbFilters = try filters.slice(dim: 1, start: 0, end: 3)
    XCTAssertLessThan(try maxError(filters.slice(dim: 1, start: 3), rgbFilters.mean(dim: 1, keepDim: true)), 1e-7)

    let image = try Tensor.randn([1, 3, 65, 47]), extra = try Tensor.randn([1, 1, 65, 47])
    let got = try Torch.withNoGrad { try rgbm.features(Tensor.cat([image, extra], dim: 1)) }
    let expected = try Torch.withNoGrad { try rgb.features(image + extra / 3) }
    // Relative to the features' size: the two paths sum the first convolution differently.
    for (index, (g, e)) in zip(got, expected).enumerated() {
      let error = try maxError(g, e), scale = try e.abs().max().item()
      XCTAssertLessThan(error, 1e-4 * scale, "feature \(index): max abs error \(error) for values up to \(scale)")
    }
  }

  func testMobileNetV2ExtraInputChannel() throws {
    try checkExtraInputChannel { try MobileNetV2(inputChannels: $0) }
  }

  func testMobileNetV3LargeExtraInputChannel() throws {
    try checkExtraInputChannel { try MobileNetV3Large(inputChannels: $0) }
  }

  func testRegistryAndFeatureIndexChecks() throws {
    XCTAssertEqual(try EncoderRegistry.make("mobilenet_v2", outputStride: 16).outputStride, 16)
    XCTAssertEqual(try EncoderRegistry.make("mobilenet_v3_large", inputChannels: 4).featureChannels, [24, 40, 112, 960])
    XCTAssertThrowsError(try MobileNetV3Large(featureIndices: [3, 7, 12, 16]))  // block 7 is at stride 16
    XCTAssertThrowsError(try MobileNetV2(outputStride: 4))
    // torchvision's segmentation backbone keys: backbone.N... without `features.`.
    let keys = try ModelZoo.make("lraspp_mobilenet_v3_large").stateDict().map(\.0)
    XCTAssertTrue(keys.contains("backbone.16.0.weight"))
    XCTAssertTrue(keys.contains("classifier.low_classifier.weight"))
  }
}
