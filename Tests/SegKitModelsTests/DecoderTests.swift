import Foundation
import SegKitModels
import SegKitTestSupport
import XCTest

/// The decoders over several encoders: output sizes for odd inputs, gradients,
/// initialisation, ASPP rates, and two models against independent torch
/// reimplementations (keys, shapes, parameter count and logits).
final class DecoderTests: XCTestCase {
  func modules(_ model: Module) -> [String: Module] {
    Dictionary(uniqueKeysWithValues: model.namedModules())
  }

  func state(_ model: Module) throws -> [String: Tensor] {
    Dictionary(uniqueKeysWithValues: try model.stateDict())
  }

  /// Every decoder gives logits of the input's size, for odd sizes, at each output stride.
  func testOutputSizeEqualsInputSize() throws {
    try SlowTest.skipInFastTier()
    Torch.manualSeed(0)
    let resnets = [("resnet18", 32), ("resnet18", 8), ("resnet50", 16)]
    // Other encoders, where registered, under the decoders most sensitive to sizes
    // (crops, transposed convolutions, low-level fusion); one stride keeps it short.
    let others = EncoderRegistry.names.filter { !$0.hasPrefix("resnet") }.map { ($0, 32) }
    let x = try Tensor.randn([1, 3, 45, 67])
    for decoder in ModelZoo.decoders {
      for (encoder, outputStride) in resnets + (["fcn8s", "deeplabv3plus", "linknet"].contains(decoder) ? others : []) {
        let name = "\(decoder)_\(encoder)"
        // torchvision's models keep torchvision's stride.
        let stride = ModelZoo.torchvisionNames.contains(name) ? nil : outputStride
        let model = try ModelZoo.make(name, classes: 3, outputStride: stride, auxiliaryHead: true).eval()
        let output = try Torch.withNoGrad { try model(x) }
        XCTAssertEqual(output.out.shape, [1, 3, 45, 67], "\(name) at output stride \(outputStride)")
        XCTAssertEqual(output.aux?.shape, [1, 3, 45, 67], "\(name) aux at output stride \(outputStride)")
      }
    }
  }

  /// A training step's gradients reach the encoder's first convolution.
  func testGradientsReachTheEncoder() throws {
    try SlowTest.skipInFastTier()
    Torch.manualSeed(0)
    let x = try Tensor.randn([2, 3, 45, 67])
    for decoder in ModelZoo.decoders {
      for (encoder, outputStride) in [("resnet18", 32), ("resnet50", 16)] {
        let name = "\(decoder)_\(encoder)"
        let model = try ModelZoo.make(name, classes: 2, outputStride: outputStride)
        try model(x).out.square().mean().backward()
        let first = try XCTUnwrap(model.encoder.stateDict().first?.0)
        let grad = try XCTUnwrap(model.namedParameters().first { $0.0 == "backbone.\(first)" }?.1.grad, name)
        XCTAssertGreaterThan(try grad.abs().sum().item(), 0, name)
      }
    }
  }

  /// FCN's skip scores start at zero and its transposed convolutions as bilinear
  /// upsampling; dilated encoders drop the upsampling between maps of one stride.
  func testFCNInitialisation() throws {
    let model = try ModelZoo.make("fcn8s_resnet18", classes: 3)
    let weights = try state(model)
    for key in ["score_pool4.weight", "score_pool4.bias", "score_pool3.weight", "score_pool3.bias"] {
      XCTAssertEqual(try weights["classifier.\(key)"]!.abs().max().item(), 0, key)
    }
    let kernel4 = try Init.bilinearUpsamplingKernel(size: 4)
    for key in ["upscore2", "upscore_pool4"] {
      let w = weights["classifier.\(key).weight"]!
      XCTAssertEqual(w.shape, [3, 3, 4, 4])
      for i in 0..<3 {
        for j in 0..<3 {
          let expected = i == j ? kernel4 : try Tensor.zeros([4, 4])
          XCTAssertEqual(try (w.select(dim: 0, index: i).select(dim: 0, index: j) - expected).abs().max().item(), 0)
        }
      }
    }
    let upscore = weights["classifier.upscore.weight"]!
    XCTAssertEqual(upscore.shape, [3, 1, 16, 16], "grouped ×8")
    let kernel16 = try Init.bilinearUpsamplingKernel(size: 16)
    for i in 0..<3 {
      XCTAssertEqual(try (upscore.select(dim: 0, index: i).select(dim: 0, index: 0) - kernel16).abs().max().item(), 0)
    }
    // At output stride 8 the three maps share one stride: no ×2 steps, a ×8 final one.
    let dilated = try state(ModelZoo.make("fcn8s_resnet18", classes: 3, outputStride: 8))
    XCTAssertNil(dilated["classifier.upscore2.weight"])
    XCTAssertNil(dilated["classifier.upscore_pool4.weight"])
    XCTAssertEqual(dilated["classifier.upscore.weight"]?.shape, [3, 1, 16, 16])
    let fcn32 = try state(ModelZoo.make("fcn32s_resnet18", classes: 3))
    XCTAssertEqual(fcn32["classifier.upscore.weight"]?.shape, [3, 1, 64, 64])
    XCTAssertNil(fcn32["classifier.score_pool4.weight"])
  }

  /// ASPP's rates follow the output stride unless given.
  func testDeepLabRatesFollowOutputStride() throws {
    func rates(_ model: any SegmentationNetwork, _ prefix: String) -> [Int] {
      let all = modules(model)
      return (1...3).compactMap { (all["\(prefix).convs.\($0).0"] as? Conv2d)?.dilation.height }
    }
    XCTAssertEqual(rates(try ModelZoo.make("deeplabv3_resnet18"), "classifier.0"), [6, 12, 18])
    XCTAssertEqual(rates(try ModelZoo.make("deeplabv3_resnet18", outputStride: 8), "classifier.0"), [12, 24, 36])
    XCTAssertEqual(rates(try ModelZoo.make("deeplabv3_resnet50"), "classifier.0"), [12, 24, 36], "torchvision's")
    XCTAssertEqual(rates(try ModelZoo.make("deeplabv3plus_resnet18"), "classifier.aspp"), [6, 12, 18])
    XCTAssertEqual(
      rates(try ModelZoo.make("deeplabv3plus_resnet18", outputStride: 8), "classifier.aspp"), [12, 24, 36])
    XCTAssertEqual(
      rates(try ModelZoo.make("deeplabv3plus_resnet18", atrousRates: [2, 4, 6]), "classifier.aspp"), [2, 4, 6])
    let separable = modules(try ModelZoo.make("deeplabv3plus_resnet18", separable: true))
    XCTAssertEqual((separable["classifier.aspp.convs.1.0.depthwise"] as? Conv2d)?.dilation.height, 6)
    XCTAssertNotNil(separable["classifier.fuse.0.pointwise"])
  }

  /// torch reimplementations of FCN-8s over ResNet-18 (output stride 32) and
  /// DeepLabv3+ over ResNet-50 (output stride 16), written from the papers with
  /// this project's key names: SegKit must load their state dicts strictly (same
  /// keys and shapes), count the same parameters and compute the same logits.
  static let reimplementation = """
    import sys, json, torch, torchvision
    from torch import nn
    \(Oracle.randomizeNorm)
    import torch.nn.functional as F
    from torchvision.models.segmentation.deeplabv3 import ASPP

    def fit(x, size):
        if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
            return x[:, :, :size[0], :size[1]]
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    class FCN8s(nn.Module):
        def __init__(self, ch, c):
            super().__init__()
            self.score_fr = nn.Conv2d(ch[3], c, 1)
            self.upscore2 = nn.ConvTranspose2d(c, c, 4, 2, 1, bias=False)
            self.score_pool4 = nn.Conv2d(ch[2], c, 1)
            self.upscore_pool4 = nn.ConvTranspose2d(c, c, 4, 2, 1, bias=False)
            self.score_pool3 = nn.Conv2d(ch[1], c, 1)
            self.upscore = nn.ConvTranspose2d(c, c, 16, 8, 4, groups=c, bias=False)
        def forward(self, f, size):
            x = self.upscore2(self.score_fr(f[3]))
            p4 = self.score_pool4(f[2]); x = fit(x, p4.shape[-2:]) + p4
            x = self.upscore_pool4(x)
            p3 = self.score_pool3(f[1]); x = fit(x, p3.shape[-2:]) + p3
            return fit(self.upscore(x), size)

    def cbr(i, o, k):
        return [nn.Conv2d(i, o, k, padding=k // 2, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

    class DeepLabV3Plus(nn.Module):
        def __init__(self, ch, c, rates):
            super().__init__()
            self.aspp = ASPP(ch[3], rates)
            self.low_level = nn.Sequential(*cbr(ch[0], 48, 1))
            self.fuse = nn.Sequential(*cbr(304, 256, 3), *cbr(256, 256, 3))
            self.logits = nn.Conv2d(256, c, 1)
        def forward(self, f, size):
            low = self.low_level(f[0])
            high = F.interpolate(self.aspp(f[3]), size=low.shape[-2:], mode="bilinear", align_corners=False)
            return self.logits(self.fuse(torch.cat([high, low], 1)))

    class Model(nn.Module):
        def __init__(self, backbone, classifier):
            super().__init__()
            self.backbone, self.classifier = backbone, classifier
            del self.backbone.fc, self.backbone.avgpool
        def forward(self, x):
            b = self.backbone
            h = b.maxpool(b.relu(b.bn1(b.conv1(x))))
            f = []
            for layer in (b.layer1, b.layer2, b.layer3, b.layer4):
                h = layer(h); f.append(h)
            return F.interpolate(self.classifier(f, x.shape[-2:]), size=x.shape[-2:], mode="bilinear", align_corners=False)

    name, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    if name == "fcn8s_resnet18":
        model = Model(torchvision.models.resnet18(), FCN8s([64, 128, 256, 512], 5))
    else:
        model = Model(torchvision.models.resnet50(replace_stride_with_dilation=[False, False, True]),
                      DeepLabV3Plus([256, 512, 1024, 2048], 5, [6, 12, 18]))
    model.eval()
    randomize_norm(model)
    x = torch.randn(1, 3, 97, 131)
    with torch.no_grad():
        y = model(x)
    torch.save(model.state_dict(), out + "/model.pth")
    torch.save({"input": x, "out": y}, out + "/io.pth")
    print(sum(p.numel() for p in model.parameters()))
    """

  func checkReimplementation(_ name: String) throws {
    let dir = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let count = try Oracle.run(Self.reimplementation, arguments: [name, dir.path])
    let model = try ModelZoo.make(name, classes: 5)
    XCTAssertEqual(model.parameterCount, Int(count.trimmingCharacters(in: .whitespacesAndNewlines)), name)
    let report = try model.loadStateDict(StateDict.load(contentsOf: dir.appendingPathComponent("model.pth")))
    XCTAssertEqual(report.missing + report.unexpected, [], name)
    model.eval()
    let io = try StateDict.load(contentsOf: dir.appendingPathComponent("io.pth"))
    let out = try Torch.withNoGrad { try model(io["input"]!).out }
    XCTAssertEqual(out.shape, io["out"]!.shape)
    let maxError = try (out - io["out"]!).abs().max().item()
    XCTAssertLessThan(maxError, 1e-4, "\(name): max abs error \(maxError)")
  }

  func testFCN8sResNet18MatchesTorchReimplementation() throws {
    try SlowTest.skipInFastTier()
    try checkReimplementation("fcn8s_resnet18")
  }

  func testDeepLabV3PlusResNet50MatchesTorchReimplementation() throws {
    try SlowTest.skipInFastTier()
    try checkReimplementation("deeplabv3plus_resnet50")
  }
}
