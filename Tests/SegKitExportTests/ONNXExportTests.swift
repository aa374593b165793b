import Foundation
import SegKitExport
import SegKitInference
import SegKitModels
import SegKitNN
import SegKitTensor
import SegKitTestSupport
import XCTest

/// ONNX export checked by the reference tools: onnx.checker on the file, and ONNX
/// Runtime (CPU) giving SegKit's logits within 1e-4 relative, on random weights at an
/// odd input size.
final class ONNXExportTests: XCTestCase {
  var folder: URL!

  override func setUpWithError() throws { folder = try Oracle.temporaryDirectory("segkit-onnx") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

  /// Exports `network` and runs the file in ONNX Runtime on `feeds`; returns its
  /// outputs by name and the model's metadata and opset.
  func runInONNXRuntime(_ file: URL, feeds: [(String, Tensor)]) throws -> (outputs: OracleTensors, meta: [String: Any]) {
    let oracle = try OracleTensors.run("""
      import onnx, onnxruntime
      path = \"\(file.path)\"
      model = onnx.load(path)
      onnx.checker.check_model(model, full_check=True)
      inputs = load_inputs()
      session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
      results = session.run(None, {i.name: inputs[i.name].numpy() for i in session.get_inputs()})
      for output, value in zip(session.get_outputs(), results):
          save(output.name, torch.from_numpy(value))
      save_meta({"metadata": {p.key: p.value for p in model.metadata_props}, "opset": model.opset_import[0].version,
                 "inputs": [i.name for i in session.get_inputs()], "outputs": [o.name for o in session.get_outputs()]})
      """, inputs: feeds)
    return (oracle, oracle.meta)
  }

  func relativeError(_ actual: Tensor, _ expected: Tensor) throws -> Double {
    try (actual.to(.float32) - expected).abs().max().item() / max(try expected.abs().max().item(), 1e-12)
  }

  func testModelsMatchONNXRuntime() throws {
    // Torchvision's MobileNetV3 models (one with its auxiliary head), every decoder and
    // every encoder at least once, and OSVOS.
    let names = [
      "lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large", "fcn32s_xception65", "fcn16s_resnet101", "fcn8s_resnet18",
      "deeplabv3_mobilenet_v2", "deeplabv3plus_resnet50", "segnet_vgg16", "unet_resnet34", "linknet_mobilenet_v3_large",
      "fcn32s_googlenet", "fcn16s_vgg16_bn", "osvos_vgg16",
    ]
    for name in names {
      Torch.manualSeed(1)
      let network = try ModelZoo.make(name, classes: name.hasPrefix("osvos") ? 1 : 5)
      network.eval()
      let input = try Tensor.randn([1, 3, 67, 75])
      let expected = try Torch.withInferenceMode { try network.forward(input) }
      var options = ONNXExportOptions(height: 67, width: 75)
      options.opset = 17
      let file = folder.appendingPathComponent("\(name).onnx")
      let model = try ONNXExport.model(of: network, options: options, normalization: .imagenet, metadata: ["model": name])
      try model.serializedData().write(to: file)
      let (outputs, meta) = try runInONNXRuntime(file, feeds: [("input", input)])
      XCTAssertLessThan(try relativeError(try outputs["out"], expected.out), 1e-4, name)
      if let aux = expected.aux {
        XCTAssertLessThan(try relativeError(try outputs["aux"], aux), 1e-4, "\(name) aux")
      }
      XCTAssertEqual((meta["metadata"] as? [String: String])?["model"], name)
      XCTAssertEqual(meta["opset"] as? Int, 17)
    }
  }

  /// A uint8 image in, normalised inside the graph; the labels output is the argmax.
  func testBakedPreprocessingAndLabels() throws {
    Torch.manualSeed(2)
    let network = try ModelZoo.make("fcn8s_resnet18", classes: 4)
    network.eval()
    let image = try (Tensor.rand([1, 33, 41, 3]) * 255).floor().to(.uint8)
    let normalization = InputNormalization.imagenet
    let input = try (image.permute(0, 3, 1, 2).to(.float32) / 255 - Tensor(normalization.mean, shape: [1, 3, 1, 1]))
      / Tensor(normalization.std, shape: [1, 3, 1, 1])
    let expected = try Torch.withInferenceMode { try network.forward(input).out }
    var options = ONNXExportOptions(height: 33, width: 41)
    (options.bakePreprocessing, options.argmax) = (true, true)
    let file = folder.appendingPathComponent("baked.onnx")
    try ONNXExport.model(of: network, options: options, normalization: normalization).serializedData().write(to: file)
    let (outputs, meta) = try runInONNXRuntime(file, feeds: [("image", image)])
    XCTAssertEqual(meta["inputs"] as? [String], ["image"])
    XCTAssertEqual(meta["outputs"] as? [String], ["out", "labels"])
    XCTAssertLessThan(try relativeError(try outputs["out"], expected), 1e-4)
    let labels = try outputs["labels"]
    XCTAssertEqual(labels.shape, [1, 33, 41])
    // Ties aside, the labels are the argmax of SegKit's logits.
    let agreement = try (labels .== expected.argmax(dim: 1)).to(.float32).mean().item()
    XCTAssertGreaterThan(agreement, 0.999)
  }

  /// A flow network takes two frames of any size (resized inside to multiples of 64)
  /// and gives the flow in pixels, conv6_1 and the scale field, as SegKit does.
  func testFlowNetworkMatchesONNXRuntime() throws {
    Torch.manualSeed(3)
    let network = try FlowNetS(widths: .thin, scaleClasses: 4)
    network.eval()
    let first = try Tensor.rand([1, 3, 70, 90]) * 255, second = try Tensor.rand([1, 3, 70, 90]) * 255
    let expected = try Torch.withInferenceMode { try network.flowAndOutput(from: first, to: second) }
    let file = folder.appendingPathComponent("flow.onnx")
    try ONNXExport.flowModel(of: network, height: 70, width: 90).serializedData().write(to: file)
    let (outputs, meta) = try runInONNXRuntime(file, feeds: [("first", first), ("second", second)])
    XCTAssertEqual(meta["outputs"] as? [String], ["flow", "features", "scale"])
    XCTAssertEqual(try outputs["flow"].shape, [1, 2, 70, 90])
    XCTAssertLessThan(try relativeError(try outputs["flow"], expected.flow), 1e-4)
    XCTAssertLessThan(try relativeError(try outputs["features"], expected.output.features), 1e-4)
    XCTAssertLessThan(try relativeError(try outputs["scale"], try XCTUnwrap(expected.output.scale)), 1e-4)
  }

  /// An operation the exporter does not know is named, not exported wrongly; so is a bad opset.
  func testUnknownOperationsAndOpsetsAreErrors() throws {
    let network = try ModelZoo.make("fcn8s_resnet18", classes: 3)
    XCTAssertThrowsError(try {
      var options = ONNXExportOptions(height: 32, width: 32)
      options.opset = 9
      _ = try ONNXExport.model(of: network, options: options, normalization: .imagenet)
    }()) { XCTAssertTrue("\($0)".contains("opset 9 is not supported"), "\($0)") }

    let x = try Tensor.randn([1, 3, 8, 8]), weight = try Tensor.randn([2, 3, 1, 1])
    let (output, trace) = try OperationTrace.record { try x.exp().conv2d(weight: weight).relu() }
    var writer = try ONNXGraphWriter(trace: trace)
    XCTAssertThrowsError(try writer.model(inputs: [("input", x)], outputs: [("out", output)], metadata: [:])) {
      XCTAssertTrue("\($0)".contains("conv2d") && "\($0)".contains("an operation the ONNX exporter does not know"), "\($0)")
    }
    // In-place changes are refused the same way.
    let (changed, inPlace) = try OperationTrace.record { () throws -> Tensor in
      let y = try x.relu()
      try y.mul_(2)
      return try y.conv2d(weight: weight)
    }
    var second = try ONNXGraphWriter(trace: inPlace)
    XCTAssertThrowsError(try second.model(inputs: [("input", x)], outputs: [("out", changed)], metadata: [:]))
  }
}
