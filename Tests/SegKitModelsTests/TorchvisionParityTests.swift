import Foundation
import SegKitModels
import SegKitTestSupport
import XCTest

/// torchvision builds each model with random weights (fixed seed, eval mode) and
/// runs it on a random image of an odd size; SegKit loads the same state dict and
/// must give the same logits.
final class TorchvisionParityTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  static let script = """
    import sys, torch, torchvision
    from safetensors.torch import save_file
    \(Oracle.randomizeNorm)
    name, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    model = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None, num_classes=5, aux_loss=True).eval()
    # Random running statistics, so batch norm is really exercised.
    randomize_norm(model)
    x = torch.randn(1, 3, 97, 131)
    with torch.no_grad():
        y = model(x)
    torch.save(model.state_dict(), out + "/model.pth")
    save_file({"input": x, "out": y["out"].contiguous(), "aux": y["aux"].contiguous()}, out + "/io.safetensors")
    """

  func checkParity(_ name: String) throws {
    let dir = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try Oracle.run(Self.script, arguments: [name, dir.path])
    let model = try ModelZoo.make(name, classes: 5)
    try model.loadStateDict(StateDict.load(contentsOf: dir.appendingPathComponent("model.pth")))
    model.eval()
    let io = try StateDict.load(contentsOf: dir.appendingPathComponent("io.safetensors"))
    let output = try Torch.withNoGrad { try model(io["input"]!) }
    try assertMatches(output, io, name, tolerance: 1e-4)
    // The fast path (batch norm folded, channels-last, inference mode) computes the same function.
    try model.optimizeForInference()
    let optimized = try Torch.withInferenceMode { try model(io["input"]!) }
    // Folding reorders float32 arithmetic, so allow rounding relative to the logits' size.
    try assertMatches(optimized, io, "\(name) optimized", relativeTolerance: 1e-5)
    model.train()
    XCTAssertThrowsError(try model.foldBatchNorm(), "folding needs evaluation mode")
  }

  func assertMatches(
    _ output: SegmentationOutput, _ io: StateDict, _ label: String, tolerance: Double = 0, relativeTolerance: Double = 0
  ) throws {
    for (key, got) in [("out", output.out), ("aux", output.aux!)] {
      let expected = io[key]!
      XCTAssertEqual(got.shape, expected.shape, "\(label) \(key) shape")
      let maxError = try (got - expected).abs().max().item()
      let bound = tolerance + relativeTolerance * (try expected.abs().max().item())
      XCTAssertLessThan(maxError, bound, "\(label) \(key): max abs error \(maxError)")
    }
  }

  func testFCNResNet50() throws { try checkParity("fcn_resnet50") }
  func testDeepLabV3ResNet50() throws { try checkParity("deeplabv3_resnet50") }

  /// ResNet-101 runs the same code as ResNet-50 with more blocks; its forward parity
  /// would cost a 220 MB checkpoint per model, so only the state-dict layout is compared.
  func testResNet101StateDictLayout() throws {
    let script = """
      import torch, torchvision
      for name in ["fcn_resnet101", "deeplabv3_resnet101"]:
          with torch.device("meta"):
              model = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None, num_classes=5, aux_loss=True)
          for key, value in model.state_dict().items():
              print(name, key, list(value.shape))
      """
    let lines = try Oracle.run(script).split(separator: "\n").map(String.init)
    for name in ["fcn_resnet101", "deeplabv3_resnet101"] {
      let expected = lines.filter { $0.hasPrefix(name + " ") }
      let got = try ModelZoo.make(name, classes: 5).stateDict().map { "\(name) \($0.0) \($0.1.shape)" }
      XCTAssertFalse(expected.isEmpty, name)
      XCTAssertEqual(got, expected, name)
    }
  }
}
