import Foundation
import SegKitModels
import SegKitTestSupport
import XCTest

/// The model contract: encoders' stated feature levels against the maps they
/// compute, VGG's extra levels, decoders and their class heads, named outputs, errors.
final class ModelContractTests: XCTestCase {
  /// Whether a map of `size` pixels lies at `stride` of `input` (strided layers
  /// round up or down, so within one pixel of input / stride).
  func lies(_ size: Int, at stride: Int, of input: Int) -> Bool {
    abs(Double(size) - Double(input) / Double(stride)) < 1
  }

  /// Every encoder at every output stride: `featureLevels` and `featureChannels`/
  /// `featureStrides` describe the maps `allFeatures` and `features` return on a 97×131 input.
  func testStatedLevelsMatchTheFeatures() throws {
    try SlowTest.skipInFastTier()
    Torch.manualSeed(0)
    let x = try Tensor.randn([1, 3, 97, 131])
    for name in EncoderRegistry.names {
      for outputStride in [32, 16, 8] {
        let encoder = try EncoderRegistry.make(name, outputStride: outputStride).eval()
        let label = "\(name) at output stride \(outputStride)"
        let levels = encoder.featureLevels
        // Encoders that offer just the four features are run once.
        let (all, four) = try Torch.withNoGrad {
          let all = try encoder.allFeatures(x)
          return (all, levels.count == 4 ? all : try encoder.features(x))
        }
        XCTAssertEqual(all.count, levels.count, label)
        for (map, level) in zip(all, levels) {
          let shape = map.shape
          XCTAssertEqual(shape[1], level.channels, "\(label): \(level)")
          XCTAssertTrue(lies(shape[2], at: level.stride, of: 97) && lies(shape[3], at: level.stride, of: 131),
                        "\(label): \(level) has shape \(shape)")
        }
        XCTAssertEqual(four.count, 4, label)
        XCTAssertEqual(encoder.featureStrides.max(), outputStride, label)
        for (index, map) in four.enumerated() {
          let shape = map.shape, stride = encoder.featureStrides[index]
          XCTAssertEqual(shape[1], encoder.featureChannels[index], "\(label): feature \(index)")
          XCTAssertTrue(lies(shape[2], at: stride, of: 97) && lies(shape[3], at: stride, of: 131),
                        "\(label): feature \(index) has shape \(shape), stated stride \(stride)")
          // The four are among the levels.
          XCTAssertTrue(levels.contains { $0.stride == stride && $0.channels == shape[1] }, "\(label): feature \(index)")
        }
      }
    }
  }

  /// VGG also offers the output of each stage's last convolution, before its pool,
  /// conv1_2 (stride 1) and conv2_2 (stride 2) among them.
  func testVGGOffersItsPrePoolConvolutions() throws {
    let expected = [
      FeatureLevel("conv1_2", channels: 64, stride: 1), FeatureLevel("conv2_2", channels: 128, stride: 2),
      FeatureLevel("pool2", channels: 128, stride: 4), FeatureLevel("conv3_3", channels: 256, stride: 4),
      FeatureLevel("pool3", channels: 256, stride: 8), FeatureLevel("conv4_3", channels: 512, stride: 8),
      FeatureLevel("pool4", channels: 512, stride: 16), FeatureLevel("conv5_3", channels: 512, stride: 16),
      FeatureLevel("pool5", channels: 512, stride: 32),
    ]
    for name in VGG.names {
      let vgg = try EncoderRegistry.make(name).eval()
      XCTAssertEqual(vgg.featureLevels, expected, name)
      let x = try Tensor.randn([1, 3, 97, 131])
      let (sides, all, four) = try Torch.withNoGrad {
        (try vgg.features(x, levels: ["conv1_2", "conv2_2"]), try vgg.allFeatures(x), try vgg.features(x))
      }
      XCTAssertEqual(sides.map(\.shape), [[1, 64, 97, 131], [1, 128, 48, 65]], name)
      XCTAssertEqual(try (sides[1] - all[1]).abs().max().item(), 0, name)
      // The four features are the pool levels, computed alike.
      for (feature, level) in zip(four, [2, 4, 6, 8]) {
        XCTAssertEqual(try (feature - all[level]).abs().max().item(), 0, "\(name): \(expected[level].name)")
      }
    }
    let dilated = try EncoderRegistry.make("vgg16", outputStride: 8)
    XCTAssertEqual(dilated.featureLevels.map(\.stride), [1, 2, 4, 4, 8, 8, 8, 8, 8])
    XCTAssertThrowsError(try dilated.features(try Tensor.zeros([1, 3, 32, 32]), levels: ["conv6"])) {
      XCTAssertTrue($0 is ModelError, "\($0)")
    }
  }

  /// The generic decoders give decoded features; the class head is a part of its own
  /// whose parameters keep their key inside `classifier`.
  func testDecodersAndClassHeads() throws {
    let expectations: [(String, String, [Int])] = [
      ("unet_resnet18", "classifier.logits.weight", [3, 16, 1, 1]),
      ("segnet_resnet18", "classifier.logits.weight", [3, 16, 1, 1]),
      ("deeplabv3plus_resnet18", "classifier.logits.weight", [3, 256, 1, 1]),
      ("linknet_resnet18", "classifier.final_deconv3.weight", [32, 3, 2, 2]),
    ]
    for (name, key, shape) in expectations {
      let model = try XCTUnwrap(try ModelZoo.make(name, classes: 3) as? SegmentationModel, name)
      let head = try XCTUnwrap(model.classHead, name)
      XCTAssertEqual(head.classes, 3, name)
      XCTAssertEqual(head.inChannels, model.classifier.outputChannels, name)
      XCTAssertEqual(model.classes, 3, name)
      let state = Dictionary(uniqueKeysWithValues: try model.stateDict())
      XCTAssertEqual(state[key]?.shape, shape, "\(name): \(key)")
    }
    // Decoders that end in class scores themselves have no separate head.
    for name in ["fcn8s_resnet18", "deeplabv3_resnet18", "fcn_resnet50", "lraspp_mobilenet_v3_large"] {
      let model = try XCTUnwrap(try ModelZoo.make(name, classes: 4) as? SegmentationModel, name)
      XCTAssertNil(model.classHead, name)
      XCTAssertEqual(model.classes, 4, name)
      XCTAssertEqual(model.classifier.outputChannels, 4, name)
    }
  }

  /// `out` plus named extras; `aux` is the extra of that name.
  func testSegmentationOutputExtras() throws {
    let out = try Tensor.zeros([1, 2, 3, 3]), aux = try Tensor.ones([1, 2, 3, 3])
    let plain = SegmentationOutput(out: out, aux: nil)
    XCTAssertTrue(plain.extras.isEmpty)
    XCTAssertNil(plain.aux)
    let withAux = SegmentationOutput(out: out, aux: aux)
    XCTAssertEqual(Array(withAux.extras.keys), ["aux"])
    XCTAssertEqual(try withAux.aux?.sum().item(), 18)
    let sides = SegmentationOutput(out: out, extras: ["side2": aux, "side3": out])
    XCTAssertNil(sides.aux)
    XCTAssertEqual(sides.extras.keys.sorted(), ["side2", "side3"])

    let model = try ModelZoo.make("unet_resnet18", classes: 2, auxiliaryHead: true).eval()
    XCTAssertEqual(model.outputNames, ["out", "aux"])
    XCTAssertEqual(model.inputNormalization, .imagenet)
    let output = try Torch.withNoGrad { try model(try Tensor.randn([1, 3, 45, 67])) }
    XCTAssertEqual(output.extras.keys.sorted(), ["aux"])
    XCTAssertEqual(output.aux?.shape, [1, 2, 45, 67])
  }

  /// SegKitModels' own errors are ModelErrors, SegKitNN's NNErrors.
  func testErrorsAreNamedForTheirLayer() throws {
    XCTAssertThrowsError(try ModelZoo.make("transformer")) { XCTAssertTrue($0 is ModelError, "\($0)") }
    XCTAssertThrowsError(try EncoderRegistry.make("resnet19")) { XCTAssertTrue($0 is ModelError, "\($0)") }
    XCTAssertThrowsError(try ModelZoo.make("unet_resnet18", outputStride: 12)) {
      XCTAssertTrue($0 is ModelError, "\($0)")
    }
    XCTAssertThrowsError(try ModelZoo.make("unet_resnet18").forward(try Tensor.zeros([3, 8, 8]))) {
      XCTAssertTrue($0 is ModelError, "\($0)")
    }
    XCTAssertThrowsError(try Conv2d(3, 4, kernelSize: 1, groups: 2)) { XCTAssertTrue($0 is NNError, "\($0)") }
  }
}
