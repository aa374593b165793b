import Foundation
import SegKitModels
import SegKitNN
import SegKitTensor
import SegKitTestSupport
import XCTest

/// The fast inference path (batch norm folded, activations and residual additions
/// fused into oneDNN's convolutions, channels-last) computes what the plain path does.
final class InferencePathTests: XCTestCase {
  func testFastPathEqualsThePlainPath() throws {
    try SlowTest.skipInFastTier()
    // Every decoder and every encoder family at least once, the torchvision heads and OSVOS.
    let names = [
      "lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "fcn_resnet50", "fcn32s_xception65", "fcn16s_resnet101",
      "fcn8s_resnet18", "deeplabv3_mobilenet_v2", "deeplabv3plus_resnet34", "segnet_vgg16", "unet_resnet50",
      "linknet_mobilenet_v3_large", "fcn32s_googlenet", "fcn16s_vgg16_bn", "osvos_vgg16", "osvos_resnet18",
    ]
    for name in names {
      Torch.manualSeed(5)
      let model = try ModelZoo.make(name, classes: name.hasPrefix("osvos") ? 1 : 4)
      // Batch statistics away from 0 and 1, so that folding changes the weights.
      for case let norm as BatchNorm2d in model.modules() {
        try Torch.withNoGrad {
          try norm.runningMean?.copy_(try Tensor.randn(norm.runningMean!.shape) * 0.1)
          try norm.runningVar?.copy_(try Tensor.rand(norm.runningVar!.shape) + 0.5)
        }
      }
      model.eval()
      let x = try Tensor.randn([2, 3, 45, 53])
      let plain = try Torch.withInferenceMode { try model.forward(x).out }
      try model.optimizeForInference()
      let fused = model.modules().compactMap { $0 as? Conv2d }.filter { $0.fusedActivation != nil }.count
      let fast = try Torch.withInferenceMode { try model.forward(x).out }
      let error = try (fast - plain).abs().max().item() / max(try plain.abs().max().item(), 1e-12)
      XCTAssertLessThan(error, 1e-4, name)
      XCTAssertGreaterThan(fused, 0, "\(name): no activation was fused")
      // Training undoes the fusion with the folding.
      model.train()
      XCTAssertEqual(model.modules().compactMap { $0 as? Conv2d }.filter { $0.fusedActivation != nil }.count, 0, name)
    }
  }

  /// Each activation oneDNN fuses, and a residual addition with ReLU, against the
  /// separate operations.
  func testFusedConvolutionsMatchSeparateOperations() throws {
    Torch.manualSeed(6)
    let x = try Tensor.randn([2, 8, 13, 11]).contiguous(.channelsLast)
    let weight = try Tensor.randn([6, 8, 3, 3]).contiguous(.channelsLast) * 0.2, bias = try Tensor.randn([6])
    let residual = try Tensor.randn([2, 6, 13, 11]).contiguous(.channelsLast)
    try Torch.withInferenceMode {
      let plain = try x.conv2d(weight: weight, bias: bias, padding: 1)
      for activation in [ConvolutionActivation.relu, .relu6, .hardswish, .sigmoid, .leakyReLU(slope: 0.1)] {
        let fused = try x.conv2d(weight: weight, bias: bias, stride: 1, padding: 1, dilation: 1, groups: 1, then: activation)
        XCTAssertLessThan(try (fused - activation.apply(plain)).abs().max().item(), 1e-5, "\(activation)")
      }
      let added = try x.conv2d(weight: weight, bias: bias, stride: 1, padding: 1, dilation: 1, groups: 1, adding: residual, then: .relu)
      XCTAssertLessThan(try (added - (plain + residual).relu()).abs().max().item(), 1e-5)
    }
  }

  /// A 1×1 or depthwise weight counts as channels-last with row-major strides too, but
  /// oneDNN chooses its kernel by the strides (half speed with row-major ones): the
  /// fast path gives every weight the canonical channels-last strides, as torch's
  /// `.to(memory_format=torch.channels_last)` does.
  func testChannelsLastWeightsHaveCanonicalStrides() throws {
    let pointwise = try Tensor.randn([64, 16, 1, 1]), depthwise = try Tensor.randn([72, 1, 3, 3])
    XCTAssertTrue(pointwise.isContiguous(.channelsLast))
    XCTAssertFalse(pointwise.isLaidOut(.channelsLast))
    XCTAssertEqual(try pointwise.contiguous(.channelsLast).strides, [16, 1, 16, 16])
    XCTAssertEqual(try depthwise.contiguous(.channelsLast).strides, [9, 1, 3, 1])
    let model = try ModelZoo.make("lraspp_mobilenet_v3_large", classes: 4)
    model.eval()
    try model.optimizeForInference()
    for conv in model.modules().compactMap({ $0 as? Conv2d }) {
      XCTAssertTrue(conv.weight.isLaidOut(.channelsLast), "\(conv.weight.shape) \(conv.weight.strides)")
    }
  }

  /// OSVOS's bilinear upsampling maps each channel onto itself: run depthwise, it
  /// gives the same sums; a weight with anything off the diagonal is left alone.
  func testDiagonalTransposedConvolutionsRunDepthwise() throws {
    Torch.manualSeed(7)
    let diagonal = try ConvTranspose2d(16, 16, kernelSize: 8, stride: 4, bias: false)
    try Init.bilinearUpsampling_(diagonal.weight)
    let dense = try ConvTranspose2d(16, 16, kernelSize: 8, stride: 4)
    let model = Sequential([diagonal, dense])
    let x = try Tensor.randn([2, 16, 9, 7])
    model.eval()
    let plain = try Torch.withInferenceMode { (try diagonal(x), try dense(x)) }
    XCTAssertEqual(try model.useDepthwiseDiagonals(), 1)
    let fast = try Torch.withInferenceMode { (try diagonal(x), try dense(x)) }
    XCTAssertLessThan(try (fast.0 - plain.0).abs().max().item(), 1e-6)
    XCTAssertEqual(try (fast.1 - plain.1).abs().max().item(), 0)
    model.train()
    XCTAssertEqual(model.namedFoldedTensors().count, 0, "training drops the depthwise form")
  }

  /// bfloat16 and int8 are options: each runs (int8 on calibrated convolutions), gives
  /// float32 outputs near the float32 path's, and training returns to float32 layers.
  func testReducedPrecisionsStayNearFloat32() throws {
    try SlowTest.skipInFastTier()
    for name in ["lraspp_mobilenet_v3_large", "deeplabv3plus_resnet34", "fcn16s_vgg16_bn", "unet_resnet50", "osvos_vgg16"] {
      let classes = name.hasPrefix("osvos") ? 1 : 4
      Torch.manualSeed(8)
      let x = try Tensor.randn([1, 3, 61, 67])
      let calibration = [try Tensor.randn([1, 3, 64, 64]), x]
      var outputs: [InferencePrecision: Tensor] = [:]
      for precision in InferencePrecision.allCases {
        Torch.manualSeed(9)
        let model = try ModelZoo.make(name, classes: classes)
        model.eval()
        if precision == .bf16 && !Torch.cpuHasBFloat16Convolutions {
          XCTAssertThrowsError(try model.optimizeForInference(precision: precision)) { error in
            XCTAssertTrue("\(error)".contains("bf16 needs a CPU with bfloat16 convolutions"), "\(error)")
          }
          continue
        }
        try model.optimizeForInference(precision: precision, calibration: calibration)
        let int8 = model.modules().compactMap { $0 as? Conv2d }.filter { $0.int8 != nil }.count
        XCTAssertEqual(int8 > 0, precision == .int8, "\(name) \(precision)")
        if precision == .bf16 {
          // Convolutions in bfloat16; transposed ones and those dilated by 12 or more (no
          // fast bfloat16 kernel) in float32.
          for conv in model.modules().compactMap({ $0 as? Conv2d }) {
            XCTAssertEqual(conv.weight.dtype, max(conv.dilation.height, conv.dilation.width) >= 12 ? .float32 : .bfloat16, name)
          }
          XCTAssertTrue(model.modules().compactMap { $0 as? ConvTranspose2d }.allSatisfy { $0.weight.dtype == .float32 }, name)
        }
        outputs[precision] = try Torch.withInferenceMode { try model.forward(x).out }
        XCTAssertEqual(outputs[precision]?.dtype, .float32, "\(name) \(precision)")
        model.train()
        XCTAssertEqual(model.modules().compactMap { $0 as? Conv2d }.filter { $0.int8 != nil }.count, 0, name)
      }
      let reference = outputs[.fp32]!
      let scale = try reference.abs().max().item()
      let bf16 = try outputs[.bf16].map { try ($0 - reference).abs().max().item() / scale } ?? 0
      let int8 = try (outputs[.int8]! - reference).abs().max().item() / scale
      XCTAssertLessThan(bf16, 0.05, "\(name): bf16 relative difference")
      XCTAssertLessThan(int8, 0.1, "\(name): int8 relative difference")
      print("\(name): largest difference relative to the largest logit, bf16 \(bf16), int8 \(int8)")
    }
  }

  /// One int8 convolution against float32 arithmetic, for inputs with and without
  /// negative values and with each activation oneDNN applies inside the kernel.
  func testInt8ConvolutionMatchesFloat32() throws {
    Torch.manualSeed(10)
    let weight = try Tensor.randn([12, 8, 3, 3]) * 0.2, bias = try Tensor.randn([12])
    for x in [try Tensor.randn([2, 8, 15, 13]), try Tensor.rand([2, 8, 15, 13]) * 3] {
      let low = try x.min().item(), high = try x.max().item()
      let int8 = try Int8Convolution(weight: weight, bias: bias, stride: 2, padding: 1, dilation: 1, groups: 1,
                                     inputRange: low...high, inputShape: x.shape)
      let plain = try x.conv2d(weight: weight, bias: bias, stride: 2, padding: 1)
      let scale = try plain.abs().max().item()
      for activation in [nil, ConvolutionActivation.relu, .relu6, .hardswish, .sigmoid] {
        let expected = try activation?.apply(plain) ?? plain
        let got = try Torch.withInferenceMode { try int8(x, then: activation) }
        XCTAssertEqual(got.shape, expected.shape)
        XCTAssertLessThan(try (got - expected).abs().max().item() / scale, 0.02, "\(String(describing: activation))")
      }
    }
  }

  /// int8 activations between convolutions: uint8 in, uint8 out (requantised inside the
  /// kernel), a residual added in int8, max pooling on the stored values; each against
  /// float32 arithmetic on the values they stand for.
  func testInt8ActivationsMatchFloat32() throws {
    Torch.manualSeed(11)
    let x = try Tensor.rand([2, 8, 15, 13]) * 3
    let weight = try Tensor.randn([8, 8, 3, 3]) * 0.2, bias = try Tensor.randn([8])
    let plain = try x.conv2d(weight: weight, bias: bias, padding: 1)
    let residual = try Tensor.randn(plain.shape)
    let sum = try (plain + residual).relu()
    let int8 = try Int8Convolution(weight: weight, bias: bias, stride: 1, padding: 1, dilation: 1, groups: 1,
                                   inputRange: 0...3, outputRange: try sum.min().item()...sum.max().item(), inputShape: x.shape)
    let q = try QuantizedActivation(quantizing: x, int8.input)
    XCTAssertEqual(q.values.dtype, .uint8)
    XCTAssertLessThan(try (q.dequantized() - x).abs().max().item(), int8.input.scale / 2 + 1e-6, "quantise, dequantise")
    let scale = try sum.abs().max().item()
    try Torch.withInferenceMode {
      let relu = try int8(q, then: .relu)
      XCTAssertEqual(relu.quantization, int8.output)
      XCTAssertLessThan(try (relu.dequantized() - plain.relu()).abs().max().item() / scale, 0.03, "conv + ReLU")
      let r = try QuantizedActivation(quantizing: residual, AffineQuantization(range: -4...4))
      let added = try int8(q, adding: r, then: .relu)
      XCTAssertLessThan(try (added.dequantized() - sum).abs().max().item() / scale, 0.03, "conv + residual + ReLU")
      XCTAssertLessThan(try (r.dequantized() - residual.clamp(min: -4, max: 4)).abs().max().item(), r.quantization.scale, "residual untouched")
      // Activations quantised otherwise are requantised to the convolution's input first.
      let other = try QuantizedActivation(quantizing: x, AffineQuantization(range: -1...5))
      XCTAssertLessThan(try (int8(other, then: .relu).dequantized() - plain.relu()).abs().max().item() / scale, 0.04, "requantised")
      // A float tensor dequantised from int8 activations quantised as the convolution's
      // input is read as those (no second quantisation): the same result as quantising it.
      let dequantized = try q.dequantized()
      let copy = try dequantized.clone()
      XCTAssertEqual(try int8(dequantized, then: .relu).toArray() as [Float], try int8(copy, then: .relu).toArray() as [Float])
      let pooled = try relu.maxPool2d(kernel: 3, stride: 2, padding: 1)
      XCTAssertEqual(try pooled.dequantized().toArray(), try relu.dequantized().maxPool2d(kernel: 3, stride: 2, padding: 1).toArray() as [Float])
    }
    let noOutput = try Int8Convolution(weight: weight, bias: bias, stride: 1, padding: 1, dilation: 1, groups: 1,
                                       inputRange: 0...3, inputShape: x.shape)
    XCTAssertThrowsError(try noOutput(q)) { XCTAssertTrue("\($0)".contains("calibration saw no output"), "\($0)") }
  }

  /// NNPACK's Winograd kernel against oneDNN's direct one: each activation, with and
  /// without a bias, channels-last or contiguous in; its output is contiguous.
  func testWinogradConvolutionMatchesDirect() throws {
    try XCTSkipUnless(Torch.hasNNPACK, "this libtorch or CPU has no NNPACK")
    Torch.manualSeed(14)
    let x = try Tensor.randn([1, 16, 29, 23])
    let weight = try Tensor.randn([12, 16, 3, 3]) * 0.2, bias = try Tensor.randn([12])
    try Torch.withInferenceMode {
      for input in [x, try x.contiguous(.channelsLast)] {
        for b in [bias, nil] {
          let plain = try input.conv2d(weight: weight, bias: b, padding: 1)
          for activation in [nil, ConvolutionActivation.relu, .relu6, .hardswish, .sigmoid, .leakyReLU(slope: 0.1)] {
            let winograd = try input.nnpackConv2d(weight: weight, bias: b, padding: 1, then: activation)
            XCTAssertTrue(winograd.isLaidOut(.contiguous))
            let expected = try activation?.apply(plain) ?? plain
            XCTAssertLessThan(try (winograd - expected).abs().max().item(), 1e-4, "\(String(describing: activation)), bias \(b != nil)")
          }
        }
      }
    }
    XCTAssertThrowsError(try x.to(.float64).nnpackConv2d(weight: weight.to(.float64), bias: nil, padding: 1, then: nil)) {
      XCTAssertTrue("\($0)".contains("float32"), "\($0)")
    }
  }

  /// With measured kernels, a network's 3×3 convolutions time both kernels on the first
  /// input of each size, keep one, and compute what the default path does (Winograd's
  /// rounding aside); training forgets the choice.
  func testMeasuredKernelsComputeTheDefaultPath() throws {
    try XCTSkipUnless(Torch.hasNNPACK, "this libtorch or CPU has no NNPACK")
    Torch.manualSeed(15)
    let model = try ModelZoo.make("fcn16s_vgg16_bn", classes: 3)
    model.eval()
    let x = try Tensor.randn([1, 3, 40, 48])
    try model.optimizeForInference(precision: .fp32)
    let direct = try Torch.withInferenceMode { try model(x).out }
    try model.optimizeForInference(precision: .fp32, measuringKernels: true)
    let measured = try Torch.withInferenceMode { try model(x).out }
    let again = try Torch.withInferenceMode { try model(x).out }
    let eligible = model.modules().compactMap { $0 as? Conv2d }.filter {
      $0.kernelSize == Size2(3) && $0.stride == Size2(1) && $0.dilation == Size2(1) && $0.groups == 1
    }
    XCTAssertEqual(model.kernelMeasurements.count, eligible.count, "one measurement per 3×3 convolution and input size")
    XCTAssertTrue(model.kernelMeasurements.allSatisfy { $0.oneDNNSeconds > 0 && $0.winogradSeconds > 0 && !$0.layer.isEmpty })
    let scale = try direct.abs().max().item()
    XCTAssertLessThan(try (measured - direct).abs().max().item() / scale, 1e-3)
    XCTAssertEqual(try again.toArray() as [Float], try measured.toArray() as [Float], "the choice is kept for the size")
    _ = try Torch.withInferenceMode { try model(try Tensor.randn([1, 3, 32, 32])).out }
    XCTAssertEqual(model.kernelMeasurements.count, 2 * eligible.count, "a new size is measured again")
    // Winograd wherever it applies, whatever the timings: the layers' own Winograd path.
    try model.measureConvolutionKernels(winogradBelow: 1e6)
    let winograd = try Torch.withInferenceMode { try model(x).out }
    XCTAssertEqual(model.kernelMeasurements.filter { $0.chosen == .winograd }.count, eligible.count)
    XCTAssertLessThan(try (winograd - direct).abs().max().item() / scale, 1e-3)
    XCTAssertThrowsError(try model.optimizeForInference(precision: .bf16, measuringKernels: true)) {
      XCTAssertTrue("\($0)".contains("not bf16"), "\($0)")
    }
    model.train()
    XCTAssertTrue(model.kernelMeasurements.isEmpty)

    // Quantised, the convolutions a decoder runs one by one (a U-Net's 3×3s) measure
    // int8 against Winograd, after calibration; an encoder's int8 chain stays int8.
    let unet = try ModelZoo.make("unet_resnet18", classes: 3)
    unet.eval()
    let y = try Tensor.randn([1, 3, 64, 64])
    try unet.optimizeForInference(precision: .int8, calibration: [y])
    let quantized = try Torch.withInferenceMode { try unet(y).out }
    try unet.optimizeForInference(precision: .int8, calibration: [y], measuringKernels: true)
    let measuredInt8 = try Torch.withInferenceMode { try unet(y).out }
    XCTAssertFalse(unet.kernelMeasurements.isEmpty)
    XCTAssertTrue(unet.kernelMeasurements.allSatisfy { $0.int8 }, "measured against the int8 kernels, not float32's")
    let int8Scale = try quantized.abs().max().item()
    XCTAssertLessThan(try (measuredInt8 - quantized).abs().max().item() / int8Scale, 0.1)
  }

  /// A quantised ResNet runs int8 from its stem to each stage's end (one quantisation
  /// in, one dequantisation per stage), near its float32 features.
  func testResNetKeepsInt8ActivationsBetweenBlocks() throws {
    Torch.manualSeed(12)
    let model = try ModelZoo.make("deeplabv3plus_resnet34", classes: 3)
    model.eval()
    let x = try Tensor.randn([1, 3, 64, 64])
    try model.optimizeForInference(precision: .fp32)
    let encoder = try XCTUnwrap(model.encoder as? ResNet)
    let float = try Torch.withInferenceMode { try encoder.features(x) }
    try model.optimizeForInference(precision: .int8, calibration: [x])
    XCTAssertTrue(try Torch.withInferenceMode { encoder.keepsInt8Activations(for: x) })
    let int8 = try Torch.withInferenceMode { try encoder.features(x) }
    for (level, (a, b)) in zip(float, int8).enumerated() {
      XCTAssertEqual(a.shape, b.shape)
      let error = try (a - b).abs().max().item() / a.abs().max().item()
      XCTAssertLessThan(error, 0.1, "layer\(level + 1)")
    }
    model.train()
    XCTAssertFalse(try Torch.withInferenceMode { encoder.keepsInt8Activations(for: x) })
  }

  /// VGG encoders (OSVOS's stages, FCN's VGG16 with batch norm) run as one int8 chain
  /// (convolutions with their ReLUs, folded batch norms, max pooling), dequantised only
  /// at the levels the decoder reads, near their float32 features.
  func testVGGKeepsInt8ActivationsBetweenLayers() throws {
    for name in ["osvos_vgg16", "fcn16s_vgg16_bn"] {
      Torch.manualSeed(13)
      let model = try ModelZoo.make(name, classes: 1)
      model.eval()
      let x = try Tensor.randn([1, 3, 48, 64])
      try model.optimizeForInference(precision: .fp32)
      let keepsInt8 = { () -> Bool in
        if let stages = model.encoder as? OSVOSStages { return stages.keepsInt8Activations(for: x) }
        return (model.encoder as? VGG)?.keepsInt8Activations(for: x) ?? false
      }
      let float = try Torch.withInferenceMode { try model.encoder.allFeatures(x) }
      XCTAssertFalse(try Torch.withInferenceMode(keepsInt8), name)
      try model.optimizeForInference(precision: .int8, calibration: [x])
      XCTAssertTrue(try Torch.withInferenceMode(keepsInt8), name)
      let int8 = try Torch.withInferenceMode { try model.encoder.allFeatures(x) }
      XCTAssertEqual(int8.count, float.count, name)
      for (level, (a, b)) in zip(float, int8).enumerated() {
        XCTAssertEqual(a.shape, b.shape, name)
        XCTAssertLessThan(try (a - b).abs().max().item() / a.abs().max().item(), 0.1, "\(name) level \(level)")
      }
      XCTAssertFalse(keepsInt8(), "\(name): not with gradients")
    }
  }
}
