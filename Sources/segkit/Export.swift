import ArgumentParser
import Foundation
import SegKitExport
import SegKitInference
import SegKitModels
import SegKitTensor

struct Export: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Write a model as an ONNX file (for ONNX Runtime, TensorRT, OpenVINO, mobile converters).",
    discussion: """
      The graph takes what SegKit's forward takes, a float32 N×3×H×W tensor named `input`, \
      normalised as the model expects, and returns its named outputs (`out`, and `aux` where \
      the model has one). --bake-preprocessing takes uint8 N×H×W×3 RGB images named `image` \
      instead and normalises inside the graph; --argmax adds `labels`, the class of each pixel. \
      Batch norm is folded into the convolutions. metadata_props hold the model's name, classes, \
      class names, normalisation and colours. The graph is written for one input size \
      (--height, --width), or with --dynamic for any batch, height and width the network takes. \
      Flow networks (--model flownets_thin or flownet2s, or a `task: flow` run) take `first` and \
      `second` and give `flow`, `features` and `scale`; a decision network (--decision FILE) takes \
      `features` and gives `score`.
      """
  )

  @OptionGroup var model: ModelArguments

  @OptionGroup var memory: MemoryLimitArgument

  @Option(help: "The format: onnx.")
  var format = "onnx"

  @Option(help: "The file to write.")
  var out: String

  @Option(help: "ONNX opset, 14 to 17.")
  var opset = 17

  @Option(help: "Input height the graph is written for (default 512; a decision network: its feature grid).")
  var height: Int?

  @Option(help: "Input width the graph is written for (default 512; a decision network: its feature grid).")
  var width: Int?

  @Flag(help: "Leave batch, height and width open (the graph is recorded near --height × --width).")
  var dynamic = false

  @Option(help: "A decision network to export (OUT/decision.safetensors of `segkit dvs train-decision`).")
  var decision: String?

  @Flag(help: "Take a uint8 H×W×3 RGB image and normalise inside the graph.")
  var bakePreprocessing = false

  @Flag(help: "Add a `labels` output: the argmax over the classes.")
  var argmax = false

  func run() throws {
    try memory.apply()
    guard format == "onnx" else { throw ValidationError("--format \(format): SegKit writes onnx") }
    for (option, value) in [("--height", height), ("--width", width)] {
      if let value, !(1...16384).contains(value) { throw ValidationError("\(option) must be 1 to 16384, got \(value)") }
    }
    guard ONNXGraphWriter.supportedOpsets.contains(opset) else {
      throw ValidationError("--opset \(opset): SegKit writes opsets \(ONNXGraphWriter.supportedOpsets.lowerBound) to \(ONNXGraphWriter.supportedOpsets.upperBound)")
    }
    let outURL = try writableFile(out, option: "--out")
    if let decision { return try exportDecisionNetwork(decision, to: outURL) }
    if let name = model.model, let widths = ModelZoo.flowNetworkWidths(name) {
      return try exportFlowNetwork(name: name, widths: widths, to: outURL)
    }
    let run = try model.run()
    if let run, (try run.layout.manifest()).task == .flow {
      return try exportFlowNetwork(name: (try run.layout.manifest()).model, run: run.layout, to: outURL)
    }
    let loaded = try model.load(run: run?.layout, fallbackClasses: nil, requireWeights: false)
    if loaded.weights == nil { warn("no weights given: the graph holds the model's initial (random) weights") }
    var options = ONNXExportOptions(height: height ?? 512, width: width ?? 512)
    (options.opset, options.openSizes, options.bakePreprocessing, options.argmax) = (opset, dynamic, bakePreprocessing, argmax)
    let manifest = loaded.manifest
    let normalization = manifest.normalization
    let metadata: [String: String] = [
      "model": manifest.model,
      "classes": String(manifest.classes),
      "class_names": manifest.classNames.joined(separator: ","),
      "normalization_mean": normalization.mean.map { String($0) }.joined(separator: ","),
      "normalization_std": normalization.std.map { String($0) }.joined(separator: ","),
      "normalization_pixel_divisor": String(normalization.pixelDivisor),
      "channel_order": normalization.channelOrder.rawValue,
      "colors": manifest.colors.map { $0.map(String.init).joined(separator: " ") }.joined(separator: ","),
      "producer": "SegKit \(SegKit.version)",
    ]
    let bytes: Data
    do {
      try ONNXExport.checkMemory(at: Size2(options.height, options.width), openSizes: dynamic, what: manifest.model) { size in
        var probe = options
        (probe.height, probe.width, probe.openSizes) = (size.height, size.width, false)
        return try ONNXExport.model(of: loaded.network, options: probe, normalization: normalization)
      }
      let onnx = try ONNXExport.model(of: loaded.network, options: options, normalization: normalization, metadata: metadata)
      bytes = try onnx.serializedData()
    } catch let error as ExportError {
      throw CommandError("\(manifest.model): \(error.message)")
    }
    try write(bytes, to: outURL)
    print("\(outURL.path): \(manifest.model), \(sizeDescription(options.height, options.width)), opset \(opset), \(bytes.count / 1024) KiB")
  }

  /// A flow network: inputs `first` and `second` (RGB 0…255), outputs `flow`, `features` and `scale`.
  private func exportFlowNetwork(name: String, widths: FlowNetS.Widths? = nil, run: RunLayout? = nil, to outURL: URL) throws {
    guard !bakePreprocessing, !argmax else {
      throw ValidationError("--bake-preprocessing and --argmax are for segmentation models; \(name) takes two frames and gives flow")
    }
    let network: FlowNetS
    if let run {
      network = try NetworkFlow(run: run).network
    } else if let weights = model.weights, let widths {
      network = try NetworkFlow(widths: widths, weights: URL(fileURLWithPath: weights)).network
    } else {
      warn("no weights given: the graph holds the model's initial (random) weights")
      network = try FlowNetS(widths: widths ?? .thin)
    }
    let bytes: Data
    do {
      try ONNXExport.checkMemory(at: Size2(height ?? 512, width ?? 512), openSizes: dynamic, what: name) { size in
        try ONNXExport.flowModel(of: network, height: size.height, width: size.width, opset: opset)
      }
      bytes = try ONNXExport.flowModel(of: network, height: height ?? 512, width: width ?? 512, opset: opset, openSizes: dynamic,
                                       metadata: ["model": name, "producer": "SegKit \(SegKit.version)"]).serializedData()
    } catch let error as ExportError {
      throw CommandError("\(name): \(error.message)")
    }
    try write(bytes, to: outURL)
    print("\(outURL.path): \(name), \(sizeDescription(height ?? 512, width ?? 512)) frames, opset \(opset), \(bytes.count / 1024) KiB")
  }

  /// A decision network: input `features` (the flow network's conv6_1), output `score`.
  private func exportDecisionNetwork(_ file: String, to outURL: URL) throws {
    guard model.model == nil, model.runFolder == nil, model.weights == nil, !bakePreprocessing, !argmax else {
      throw ValidationError("--decision exports a decision network alone: leave out --model, --run, --weights, --bake-preprocessing and --argmax")
    }
    let network = try DecisionNetworkFile.read(URL(fileURLWithPath: file))
    let size = Size2(height ?? network.grid.height, width ?? network.grid.width)
    let bytes: Data
    do {
      try ONNXExport.checkMemory(at: size, openSizes: dynamic, what: "the decision network") { probe in
        try ONNXExport.decisionModel(of: network, featureSize: probe, opset: opset)
      }
      bytes = try ONNXExport.decisionModel(
        of: network, featureSize: size, opset: opset, openSizes: dynamic,
        metadata: ["model": "dvsnet_decision", "grid": "\(network.grid.height)x\(network.grid.width)",
                   "producer": "SegKit \(SegKit.version)"]
      ).serializedData()
    } catch let error as ExportError {
      throw CommandError("\(file): \(error.message)")
    }
    try write(bytes, to: outURL)
    print("\(outURL.path): decision network, \(dynamic ? "features of any size" : "\(size.height)×\(size.width) features"), opset \(opset), \(bytes.count / 1024) KiB")
  }

  private func sizeDescription(_ height: Int, _ width: Int) -> String {
    dynamic ? "any batch and size" : "\(height)×\(width)"
  }

  private func write(_ bytes: Data, to outURL: URL) throws {
    do { try AtomicFile.write(bytes, to: outURL) } catch let error as FileWriteError { throw CommandError(error.description) }
  }
}
