import Foundation
import SegKitTraining
import SegKitTestSupport
import XCTest

/// `segkit predict --resize none --save-logits` on a torchvision checkpoint gives
/// torchvision's logits for the same image, normalised the same way.
final class PredictCommandTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  static let script = """
    import sys, numpy, torch, torchvision
    \(Oracle.randomizeNorm)
    from PIL import Image
    from safetensors.torch import save_file
    name, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    kwargs = {} if name.startswith("lraspp") else {"aux_loss": True}
    model = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None, num_classes=7, **kwargs).eval()
    randomize_norm(model, affine=False)
    torch.save(model.state_dict(), out + "/model.pth")
    rgb = (torch.rand(97, 131, 3) * 255).to(torch.uint8).numpy()
    Image.fromarray(rgb).save(out + "/image.png")
    x = torchvision.transforms.functional.to_tensor(Image.open(out + "/image.png").convert("RGB"))
    x = torchvision.transforms.functional.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])[None]
    with torch.no_grad():
        y = model(x)
    save_file({k: v.contiguous() for k, v in y.items()}, out + "/expected.safetensors")
    """

  func testLogitsAndLabelsMatchTorchvision() throws {
    let dir = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try Oracle.run(Self.script, arguments: ["deeplabv3_mobilenet_v3_large", dir.path])
    let logitsURL = dir.appendingPathComponent("logits.safetensors")
    let result = try SegKitCommand.run([
      "predict", "--model", "deeplabv3_mobilenet_v3_large", "--weights", dir.appendingPathComponent("model.pth").path,
      "--input", dir.appendingPathComponent("image.png").path, "--resize", "none", "--save-logits", logitsURL.path,
      "--out", dir.appendingPathComponent("labels").path,
    ])
    XCTAssertEqual(result.status, 0, result.error)
    let logits = try StateDict.load(contentsOf: logitsURL)
    let expected = try StateDict.load(contentsOf: dir.appendingPathComponent("expected.safetensors"))
    XCTAssertEqual(logits.names, ["out", "aux"])
    for key in ["out", "aux"] {
      XCTAssertEqual(logits[key]!.shape, [1, 7, 97, 131], key)
      XCTAssertEqual(logits[key]!.dtype, .float32, key)
      XCTAssertLessThan(try (logits[key]! - expected[key]!).abs().max().item(), 1e-4, key)
    }
    let labels = try ImageIO.readLabel(dir.appendingPathComponent("labels/image.png"))
    let argmax = try expected["out"]!.argmax(dim: 1).squeeze(dim: 0).to(.uint8).toArray(UInt8.self)
    XCTAssertEqual(labels.pixels, argmax, "the label PNG holds the class ids")
    // Reduced precisions: the logits stay float32 and near torchvision's (int8
    // calibrated on the image itself).
    let scale = try expected["out"]!.abs().max().item()
    for (precision, tolerance) in [("bf16", 0.05), ("int8", 0.1)] {
      let reduced = dir.appendingPathComponent("\(precision).safetensors")
      let run = try SegKitCommand.run([
        "predict", "--model", "deeplabv3_mobilenet_v3_large", "--weights", dir.appendingPathComponent("model.pth").path,
        "--input", dir.appendingPathComponent("image.png").path, "--resize", "none", "--save-logits", reduced.path,
        "--out", dir.appendingPathComponent(precision).path, "--precision", precision,
      ])
      if precision == "bf16" && !Torch.cpuHasBFloat16Convolutions {
        // A CPU without bfloat16 convolutions (AVX2 only): refused in words, before a model is converted.
        XCTAssertEqual(run.status, 1, run.error)
        XCTAssertTrue(run.error.contains("bf16 needs a CPU with bfloat16 convolutions"), run.error)
        continue
      }
      XCTAssertEqual(run.status, 0, run.error)
      let out = try XCTUnwrap(try StateDict.load(contentsOf: reduced)["out"])
      XCTAssertEqual(out.dtype, .float32, precision)
      let difference = try (out - expected["out"]!).abs().max().item() / scale
      XCTAssertGreaterThan(difference, 0, precision)
      XCTAssertLessThan(difference, tolerance, precision)
    }
    // Measured kernels (Winograd where it times faster) stay within float32 rounding of torchvision's.
    let measuredURL = dir.appendingPathComponent("measured.safetensors")
    let measured = try SegKitCommand.run([
      "predict", "--model", "deeplabv3_mobilenet_v3_large", "--weights", dir.appendingPathComponent("model.pth").path,
      "--input", dir.appendingPathComponent("image.png").path, "--resize", "none", "--save-logits", measuredURL.path,
      "--out", dir.appendingPathComponent("measured").path, "--measure-kernels",
    ])
    XCTAssertEqual(measured.status, 0, measured.error)
    let measuredLogits = try StateDict.load(contentsOf: measuredURL)
    for key in ["out", "aux"] {
      XCTAssertLessThan(try (measuredLogits[key]! - expected[key]!).abs().max().item() / scale, 1e-3, "measured kernels, \(key)")
    }
  }

  func testWrongCheckpointIsAClearError() throws {
    let dir = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try Oracle.run(Self.script, arguments: ["lraspp_mobilenet_v3_large", dir.path])
    let result = try SegKitCommand.run([
      "predict", "--model", "fcn_resnet50", "--weights", dir.appendingPathComponent("model.pth").path,
      "--input", dir.appendingPathComponent("image.png").path, "--out", dir.appendingPathComponent("labels").path,
    ])
    XCTAssertNotEqual(result.status, 0)
    XCTAssertTrue(result.error.contains("model.pth") && result.error.contains("Missing key(s)"), result.error)
    let missing = try SegKitCommand.run(["predict", "--model", "fcn_resnet50", "--input", "/nonexistent.png"])
    XCTAssertNotEqual(missing.status, 0)
    XCTAssertTrue(missing.error.contains("/nonexistent.png"), missing.error)
    // Label maps hold 8-bit ids: more than 256 classes would wrap.
    let wide = try SegKitCommand.run(["predict", "--model", "fcn_resnet50", "--classes", "300",
                                      "--input", dir.appendingPathComponent("image.png").path])
    XCTAssertNotEqual(wide.status, 0)
    XCTAssertTrue(wide.error.contains("--classes must be between 1 and 256"), wide.error)
  }
}

extension PredictCommandTests {
  /// `osvos_vgg16` from a weight file: `out` and `side2`…`side5` as [1, 1, H, W], the
  /// image normalised as OSVOS wants (BGR minus Caffe's means), foreground where the
  /// fused logit is positive.
  func testOSVOSWritesItsFiveOutputs() throws {
    let dir = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    Torch.manualSeed(4)
    let model = try ModelZoo.make("osvos_vgg16", classes: 1)
    try OracleModels.drawOrdinaryWeights(try model.stateDict()) { $0.hasPrefix("upscale") }
    let weights = dir.appendingPathComponent("osvos.safetensors")
    try StateDict(try model.stateDict()).save(to: weights)
    var image = Image(width: 53, height: 41, channels: 3)
    for i in image.pixels.indices { image.pixels[i] = UInt8((i * 37) % 256) }
    let imageURL = dir.appendingPathComponent("frame.png")
    try ImageIO.writePNG(image, to: imageURL)
    let logitsURL = dir.appendingPathComponent("logits.safetensors")
    let result = try SegKitCommand.run([
      "predict", "--model", "osvos_vgg16", "--weights", weights.path, "--input", imageURL.path, "--resize", "none",
      "--save-logits", logitsURL.path, "--out", dir.appendingPathComponent("labels").path,
    ])
    XCTAssertEqual(result.status, 0, result.error)
    let logits = try StateDict.load(contentsOf: logitsURL)
    XCTAssertEqual(logits.names, ["out", "side2", "side3", "side4", "side5"])
    let expected = try Torch.withNoGrad { try model(try InputNormalization.caffeBGR.batch(image)) }
    try assertMatchesOracle(logits["out"], expected.out, rtol: 1e-4, atol: 1e-4, "out")
    try assertMatchesOracle(logits["side4"], expected.extras["side4"]!, rtol: 1e-4, atol: 1e-4, "side4")
    let labels = try ImageIO.readLabel(dir.appendingPathComponent("labels/frame.png"))
    XCTAssertEqual(labels.pixels, try (expected.out .> 0).squeeze(dim: 0).squeeze(dim: 0).to(.uint8).toArray(UInt8.self))
  }
}
