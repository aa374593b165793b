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

  override func setUpWithError() throws {
    folder = try Oracle.temporaryDirectory("segkit-onnx")
    try SlowTest.skipInFastTier()
  }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

  /// Runs each file in ONNX Runtime on its feeds, after onnx.checker; returns the
  /// outputs of run i as "i/name" and the models' metadata, opsets and input and
  /// output names and shapes as written in the files (meta["i"]).
  func runInONNXRuntime(_ runs: [(file: URL, feeds: [(String, Tensor)])]) throws -> (outputs: OracleTensors, meta: [String: Any]) {
    let oracle = try OracleTensors.run("""
      import onnx, onnxruntime
      inputs = load_inputs()
      def dims(value):
          return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
      for index, path in enumerate(\(runs.map { $0.file.path })):
          model = onnx.load(path)
          onnx.checker.check_model(model, full_check=True)
          session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
          results = session.run(None, {i.name: inputs[f"{index}/{i.name}"].numpy() for i in session.get_inputs()})
          for output, value in zip(session.get_outputs(), results):
              save(f"{index}/{output.name}", torch.from_numpy(value))
          save_meta({str(index): {
              "metadata": {p.key: p.value for p in model.metadata_props}, "opset": model.opset_import[0].version,
              "inputs": [i.name for i in session.get_inputs()], "outputs": [o.name for o in session.get_outputs()],
              "input_dims": [dims(i) for i in model.graph.input], "output_dims": [dims(o) for o in model.graph.output],
              "initializers": [i.name for i in model.graph.initializer]}})
      """, inputs: runs.enumerated().flatMap { index, run in run.feeds.map { ("\(index)/\($0.0)", $0.1) } })
    return (oracle, oracle.meta)
  }

  /// One file run on one set of feeds.
  func runInONNXRuntime(_ file: URL, feeds: [(String, Tensor)]) throws -> (outputs: [String: Tensor], meta: [String: Any]) {
    let (oracle, meta) = try runInONNXRuntime([(file, feeds)])
    let run = try XCTUnwrap(meta["0"] as? [String: Any])
    var outputs: [String: Tensor] = [:]
    for name in run["outputs"] as? [String] ?? [] { outputs[name] = try oracle["0/\(name)"] }
    return (outputs, run)
  }

  /// The dimensions of a file's inputs or outputs as written: numbers or names.
  func dims(_ meta: [String: Any]?, _ key: String) -> [[String]] {
    (meta?[key] as? [[Any]] ?? []).map { $0.map { "\($0)" } }
  }

  func relativeError(_ actual: Tensor, _ expected: Tensor) throws -> Double {
    try (actual.to(.float32) - expected).abs().max().item() / max(try expected.abs().max().item(), 1e-12)
  }

  /// Each model exported for 67×75 and with open sizes; the open graph runs at 67×75,
  /// at a batch of two at 58×90 and at 64×96 (multiples of 32: no padding), sizes it
  /// was not recorded at.
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
      let small = try Tensor.randn([1, 3, 67, 75]), wide = try Tensor.randn([2, 3, 58, 90]), round = try Tensor.randn([1, 3, 64, 96])
      let expected = try Torch.withInferenceMode { (try network.forward(small), try network.forward(wide), try network.forward(round)) }
      var options = ONNXExportOptions(height: 67, width: 75)
      options.opset = 17
      let fixed = folder.appendingPathComponent("\(name).onnx"), open = folder.appendingPathComponent("\(name)-open.onnx")
      try ONNXExport.model(of: network, options: options, normalization: .imagenet, metadata: ["model": name])
        .serializedData().write(to: fixed)
      options.openSizes = true
      try ONNXExport.model(of: network, options: options, normalization: .imagenet).serializedData().write(to: open)
      let (outputs, meta) = try runInONNXRuntime([
        (fixed, [("input", small)]), (open, [("input", small)]), (open, [("input", wide)]), (open, [("input", round)]),
      ])
      for (run, expected) in [(0, expected.0), (1, expected.0), (2, expected.1), (3, expected.2)] {
        XCTAssertEqual(try outputs["\(run)/out"].shape, expected.out.shape, "\(name) run \(run)")
        XCTAssertLessThan(try relativeError(try outputs["\(run)/out"], expected.out), 1e-4, "\(name) run \(run)")
        if let aux = expected.aux {
          XCTAssertLessThan(try relativeError(try outputs["\(run)/aux"], aux), 1e-4, "\(name) run \(run) aux")
        }
      }
      let (fixedMeta, openMeta) = (meta["0"] as? [String: Any], meta["1"] as? [String: Any])
      XCTAssertEqual((fixedMeta?["metadata"] as? [String: String])?["model"], name)
      XCTAssertEqual(fixedMeta?["opset"] as? Int, 17)
      // Weights keep their state-dict names.
      let firstWeight = try XCTUnwrap(network.namedParameters().first?.0)
      XCTAssertTrue((fixedMeta?["initializers"] as? [String] ?? []).contains(firstWeight), "\(name): \(firstWeight)")
      XCTAssertEqual(dims(openMeta, "input_dims"), [["batch", "3", "height", "width"]], name)
      XCTAssertEqual(dims(openMeta, "output_dims").first, ["batch", name.hasPrefix("osvos") ? "1" : "5", "height", "width"], name)
    }
  }

  /// A uint8 image in, normalised inside the graph; the labels output is the argmax.
  /// Fixed at 33×41, and open: a batch of two 45×38 images.
  func testBakedPreprocessingAndLabels() throws {
    Torch.manualSeed(2)
    let network = try ModelZoo.make("fcn8s_resnet18", classes: 4)
    network.eval()
    let normalization = InputNormalization.imagenet
    func expected(_ image: Tensor) throws -> Tensor {
      let input = try (image.permute(0, 3, 1, 2).to(.float32) / 255 - Tensor(normalization.mean, shape: [1, 3, 1, 1]))
        / Tensor(normalization.std, shape: [1, 3, 1, 1])
      return try Torch.withInferenceMode { try network.forward(input).out }
    }
    let image = try (Tensor.rand([1, 33, 41, 3]) * 255).floor().to(.uint8)
    let images = try (Tensor.rand([2, 45, 38, 3]) * 255).floor().to(.uint8)
    var options = ONNXExportOptions(height: 33, width: 41)
    (options.bakePreprocessing, options.argmax) = (true, true)
    let fixed = folder.appendingPathComponent("baked.onnx"), open = folder.appendingPathComponent("baked-open.onnx")
    try ONNXExport.model(of: network, options: options, normalization: normalization).serializedData().write(to: fixed)
    options.openSizes = true
    try ONNXExport.model(of: network, options: options, normalization: normalization).serializedData().write(to: open)
    let (outputs, meta) = try runInONNXRuntime([(fixed, [("image", image)]), (open, [("image", images)])])
    for (run, image) in [(0, image), (1, images)] {
      let runMeta = meta["\(run)"] as? [String: Any]
      XCTAssertEqual(runMeta?["inputs"] as? [String], ["image"])
      XCTAssertEqual(runMeta?["outputs"] as? [String], ["out", "labels"])
      let logits = try expected(image)
      XCTAssertLessThan(try relativeError(try outputs["\(run)/out"], logits), 1e-4)
      let labels = try outputs["\(run)/labels"]
      XCTAssertEqual(labels.shape, [image.shape[0], image.shape[1], image.shape[2]])
      // Ties aside, the labels are the argmax of SegKit's logits.
      let agreement = try (labels .== logits.argmax(dim: 1)).to(.float32).mean().item()
      XCTAssertGreaterThan(agreement, 0.999)
    }
    let openMeta = meta["1"] as? [String: Any]
    XCTAssertEqual(dims(openMeta, "input_dims"), [["batch", "height", "width", "3"]])
    XCTAssertEqual(dims(openMeta, "output_dims"), [["batch", "4", "height", "width"], ["batch", "height", "width"]])
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
    XCTAssertEqual(try XCTUnwrap(outputs["flow"]).shape, [1, 2, 70, 90])
    XCTAssertLessThan(try relativeError(try XCTUnwrap(outputs["flow"]), expected.flow), 1e-4)
    XCTAssertLessThan(try relativeError(try XCTUnwrap(outputs["features"]), expected.output.features), 1e-4)
    XCTAssertLessThan(try relativeError(try XCTUnwrap(outputs["scale"]), try XCTUnwrap(expected.output.scale)), 1e-4)
  }

  /// The flow is scaled back by the ratio of the frame size to the next multiples of
  /// 64, a constant computed from the size: open sizes are refused, naming it.
  func testFlowNetworkWithOpenSizesIsRefused() throws {
    let network = try FlowNetS(widths: .thin)
    XCTAssertThrowsError(try ONNXExport.flowModel(of: network, height: 70, width: 90, openSizes: true)) {
      XCTAssertTrue("\($0)".contains("constant computed from the input size") && "\($0)".contains("fixed --height"), "\($0)")
    }
  }

  /// DVSNet's decision network: features of its grid, and with open sizes a batch of
  /// three feature maps of another size (resized to the grid inside).
  func testDecisionNetworkMatchesONNXRuntime() throws {
    Torch.manualSeed(4)
    let network = try DecisionNetwork(featureChannels: 6, grid: Size2(2, 3), initialScore: 95)
    network.eval()
    let atGrid = try Tensor.randn([1, 6, 2, 3]), other = try Tensor.randn([3, 6, 5, 4])
    let expected = try Torch.withInferenceMode { (try network.forward(atGrid), try network.forward(other)) }
    let fixed = folder.appendingPathComponent("decision.onnx"), open = folder.appendingPathComponent("decision-open.onnx")
    try ONNXExport.decisionModel(of: network).serializedData().write(to: fixed)
    try ONNXExport.decisionModel(of: network, openSizes: true).serializedData().write(to: open)
    let (outputs, meta) = try runInONNXRuntime([(fixed, [("features", atGrid)]), (open, [("features", other)])])
    XCTAssertLessThan(try relativeError(try outputs["0/score"], expected.0), 1e-5)
    XCTAssertLessThan(try relativeError(try outputs["1/score"], expected.1), 1e-5)
    XCTAssertEqual(try outputs["1/score"].shape, [3])
    XCTAssertEqual(dims(meta["1"] as? [String: Any], "input_dims"), [["batch", "6", "height", "width"]])
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
    let (output, trace) = try OperationTrace.record { try x.sin().conv2d(weight: weight).relu() }
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

  /// XMem's per-frame networks (key encoder and projection, value encoder with its deep
  /// update, decoder with soft aggregation) give SegKit's outputs in ONNX Runtime, from
  /// the plain and the folded network.
  func testXMemNetworksMatchONNXRuntime() throws {
    try SlowTest.skipInFastTier()
    Torch.manualSeed(6)
    let network = try XMem(dimensions: XMem.Dimensions(key: 16, value: 32, hidden: 8)).eval()
    let (height, width, objects) = (32, 48, 2)
    let image = try Tensor.randn([1, 3, height, width]), masks = try Tensor.rand([1, objects, height, width])
    for folded in [false, true] {
      if folded { try network.optimizeForInference() }
      let models = try ONNXExport.xmemModels(of: network, height: height, width: width, objects: objects)
      let (key, value, decoder) = ["key", "value", "decoder"].map { folder.appendingPathComponent("xmem-\($0)-\(folded).onnx") }.tuple3
      try models.key.serializedData().write(to: key)
      try models.value.serializedData().write(to: value)
      try models.decoder.serializedData().write(to: decoder)
      let expected = try Torch.withInferenceMode { () throws -> [String: Tensor] in
        let encoded = try network.encodeKey(image)
        let hidden = try Tensor.randn([1, objects, 8, height / 16, width / 16])
        let valued = try network.encodeValue(frame: image, f16: encoded.features.f16, hidden: hidden, masks: masks)
        let readout = try Tensor.randn([1, objects, 32, height / 16, width / 16])
        let decoded = try network.segment(features: encoded.features, readout: readout, hidden: hidden)
        return ["key": encoded.key, "shrinkage": encoded.shrinkage!, "selection": encoded.selection!, "f16": encoded.features.f16,
                "f8": encoded.features.f8, "f4": encoded.features.f4, "hidden": hidden, "readout": readout,
                "value": valued.value, "value_hidden": valued.hidden!, "decoder_hidden": decoded.hidden!, "logits": decoded.logits,
                "probabilities": decoded.probabilities]
      }
      let e = { (name: String) in expected[name]! }
      let (outputs, _) = try runInONNXRuntime([
        (key, [("image", image)]),
        (value, [("image", image), ("f16", e("f16")), ("masks", masks), ("hidden", e("hidden"))]),
        (decoder, [("f16", e("f16")), ("f8", e("f8")), ("f4", e("f4")), ("readout", e("readout")), ("hidden", e("hidden"))]),
      ])
      for (output, name) in [("0/key", "key"), ("0/shrinkage", "shrinkage"), ("0/selection", "selection"), ("0/f16", "f16"),
                             ("0/f8", "f8"), ("0/f4", "f4"), ("1/value", "value"), ("1/hidden_out", "value_hidden"),
                             ("2/hidden_out", "decoder_hidden"), ("2/logits", "logits"), ("2/probabilities", "probabilities")] {
        XCTAssertLessThan(try relativeError(try outputs[output], e(name)), 1e-4, "\(output), folded \(folded)")
      }
    }
    XCTAssertThrowsError(try ONNXExport.xmemModels(of: network, height: 30, width: 48, objects: 2)) {
      XCTAssertTrue("\($0)".contains("multiples of 16"), "\($0)")
    }
  }
}

extension Array {
  fileprivate var tuple3: (Element, Element, Element) { (self[0], self[1], self[2]) }
}
