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
      the model has one). --bake-preprocessing takes a uint8 1×H×W×3 RGB image named `image` \
      instead and normalises inside the graph; --argmax adds `labels`, the class of each pixel. \
      Batch norm is folded into the convolutions. metadata_props hold the model's name, classes, \
      class names, normalisation and colours. The graph is written for one input size \
      (--height, --width).
      """
  )

  @OptionGroup var model: ModelArguments

  @Option(help: "The format: onnx.")
  var format = "onnx"

  @Option(help: "The file to write.")
  var out: String

  @Option(help: "ONNX opset, 14 to 17.")
  var opset = 17

  @Option(help: "Input height the graph is written for.")
  var height = 512

  @Option(help: "Input width the graph is written for.")
  var width = 512

  @Flag(help: "Input and output sizes left open (not supported yet: the graph is written for --height × --width).")
  var dynamic = false

  @Flag(help: "Take a uint8 H×W×3 RGB image and normalise inside the graph.")
  var bakePreprocessing = false

  @Flag(help: "Add a `labels` output: the argmax over the classes.")
  var argmax = false

  func run() throws {
    guard format == "onnx" else { throw ValidationError("--format \(format): SegKit writes onnx") }
    guard !dynamic else {
      throw ValidationError("--dynamic: SegKit's ONNX export writes fixed sizes so far; give --height and --width")
    }
    guard (1...16384).contains(height), (1...16384).contains(width) else {
      throw ValidationError("--height and --width must be 1 to 16384, got \(height)×\(width)")
    }
    guard ONNXGraphWriter.supportedOpsets.contains(opset) else {
      throw ValidationError("--opset \(opset): SegKit writes opsets \(ONNXGraphWriter.supportedOpsets.lowerBound) to \(ONNXGraphWriter.supportedOpsets.upperBound)")
    }
    let outURL = try writableFile(out, option: "--out")
    if let name = model.model, let widths = ModelZoo.flowNetworkWidths(name) {
      return try exportFlowNetwork(name: name, widths: widths, to: outURL)
    }
    let run = try model.run()
    if let run, (try run.layout.manifest()).task == .flow {
      return try exportFlowNetwork(name: (try run.layout.manifest()).model, run: run.layout, to: outURL)
    }
    let loaded = try model.load(run: run?.layout, fallbackClasses: nil, requireWeights: false)
    if loaded.weights == nil { warn("no weights given: the graph holds the model's initial (random) weights") }
    var options = ONNXExportOptions(height: height, width: width)
    (options.opset, options.bakePreprocessing, options.argmax) = (opset, bakePreprocessing, argmax)
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
      let onnx = try ONNXExport.model(of: loaded.network, options: options, normalization: normalization, metadata: metadata)
      bytes = try onnx.serializedData()
    } catch let error as ExportError {
      throw CommandError("\(manifest.model): \(error.message)")
    }
    try write(bytes, to: outURL)
    print("\(outURL.path): \(manifest.model), \(height)×\(width), opset \(opset), \(bytes.count / 1024) KiB")
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
      bytes = try ONNXExport.flowModel(of: network, height: height, width: width, opset: opset,
                                       metadata: ["model": name, "producer": "SegKit \(SegKit.version)"]).serializedData()
    } catch let error as ExportError {
      throw CommandError("\(name): \(error.message)")
    }
    try write(bytes, to: outURL)
    print("\(outURL.path): \(name), \(height)×\(width) frames, opset \(opset), \(bytes.count / 1024) KiB")
  }

  /// Written beside the target under a temporary name, then renamed: nothing partial at `url`.
  private func write(_ bytes: Data, to outURL: URL) throws {
    let partial = outURL.deletingLastPathComponent().appendingPathComponent(".\(outURL.lastPathComponent).partial")
    PartialFiles.register(partial)
    defer { PartialFiles.unregister(partial); try? FileManager.default.removeItem(at: partial) }
    try bytes.write(to: partial)
    guard rename(partial.path, outURL.path) == 0 else {
      throw CommandError("\(outURL.path): cannot be written (\(String(cString: strerror(errno))))")
    }
  }
}
