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
}
