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
      `features` and gives `score`. XMem (--model xmem --weights XMem.pth, or a `task: memory` run) is \
      written as its three per-frame networks, OUT-key.onnx, OUT-value.onnx and OUT-decoder.onnx, for \
      --objects objects (the memory between them stays with the caller; docs/export.md).
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

  @Option(help: "XMem: the objects its value encoder and decoder are written for (default 1).")
  var objects = 1

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
    let producer = "SegKit \(SegKit.version)"
    var options = ONNXExportOptions(height: height ?? 512, width: width ?? 512)
    (options.opset, options.openSizes, options.bakePreprocessing, options.argmax) = (opset, dynamic, bakePreprocessing, argmax)
    let run = try model.run(for: "segkit export", tasks: [.semantic, .foreground, .flow, .memory])
    if try run?.layout.manifest().task == .memory || model.model == "xmem" {
      return try exportXMem(weights: run.map { $0.layout.finalWeightsURL.path } ?? model.weights, to: outURL)
    }
    let flowFamily = ModelFamily(name: try run.map { try $0.layout.manifest().model } ?? model.model ?? "")?.flowWidths
    let (what, bytes, shape): (String, Data, String)
    do {
      if let decision {
        guard model.model == nil, model.runFolder == nil, model.weights == nil, !bakePreprocessing, !argmax else {
          throw ValidationError("--decision exports a decision network alone: leave out --model, --run, --weights, --bake-preprocessing and --argmax")
        }
        let network = try DecisionNetworkFile.read(URL(fileURLWithPath: decision))
        let size = Size2(height ?? network.grid.height, width ?? network.grid.width)
        (what, shape) = ("decision network", dynamic ? "features of any size" : "\(size.height)×\(size.width) features")
        bytes = try ONNXFiles.decision(network, featureSize: size, opset: opset, openSizes: dynamic, producer: producer)
      } else if let widths = flowFamily {
        guard !bakePreprocessing, !argmax else {
          throw ValidationError("--bake-preprocessing and --argmax are for segmentation models; a flow network takes two frames and gives flow")
        }
        let network: FlowNetS
        if let run {
          network = try NetworkFlow(run: run.layout).network
        } else if let weights = model.weights {
          network = try NetworkFlow(widths: widths, weights: URL(fileURLWithPath: weights)).network
        } else {
          warn("no weights given: the graph holds the model's initial (random) weights")
          network = try FlowNetS(widths: widths)
        }
        what = try run?.layout.manifest().model ?? model.model ?? ""
        shape = sizeDescription(options.height, options.width) + " frames"
        bytes = try ONNXFiles.flow(network, name: what, size: Size2(options.height, options.width), opset: opset, openSizes: dynamic,
                                   producer: producer)
      } else {
        let loaded = try model.load(run: run?.layout, fallbackClasses: nil, requireWeights: false)
        if loaded.weights == nil { warn("no weights given: the graph holds the model's initial (random) weights") }
        (what, shape) = (loaded.manifest.model, sizeDescription(options.height, options.width))
        bytes = try ONNXFiles.segmentation(loaded.network, manifest: loaded.manifest, options: options, producer: producer)
      }
    } catch let error as ExportError {
      throw CommandError("\(decision ?? model.runFolder ?? model.model ?? ""): \(error.message)")
    }
    try write(bytes, to: outURL)
    print("\(outURL.path): \(what), \(shape), opset \(opset), \(bytes.count / 1024) KiB")
  }

  /// XMem's three networks beside `out` (its name without .onnx, then -key, -value, -decoder).
  private func exportXMem(weights: String?, to out: URL) throws {
    guard let weights else { throw ValidationError("--model xmem needs --weights (XMem.pth or a memory run's model.safetensors)") }
    guard !dynamic, !bakePreprocessing, !argmax, (1...64).contains(objects) else {
      throw ValidationError("XMem is written for one frame size and 1 to 64 --objects, without --dynamic, --bake-preprocessing or --argmax")
    }
    let size = Size2(height ?? 480, width ?? 864)
    let network = try XMem.load(contentsOf: URL(fileURLWithPath: weights))
    let parts: [(part: String, data: Data)]
    do {
      parts = try ONNXFiles.xmem(network, size: size, objects: objects, opset: opset, producer: "SegKit \(SegKit.version)")
    } catch let error as ExportError { throw CommandError("\(weights): \(error.message)") }
    let stem = out.pathExtension == "onnx" ? out.deletingPathExtension() : out
    for (part, data) in parts {
      let file = stem.deletingLastPathComponent().appendingPathComponent("\(stem.lastPathComponent)-\(part).onnx")
      try write(data, to: file)
      print("\(file.path): XMem's \(part) network, \(size.height)×\(size.width), \(objects) object(s), opset \(opset), \(data.count / 1024) KiB")
    }
  }

  private func sizeDescription(_ height: Int, _ width: Int) -> String {
    dynamic ? "any batch and size" : "\(height)×\(width)"
  }
}
