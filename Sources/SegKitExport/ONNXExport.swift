import Foundation
import SegKitModels
import SegKitNN
import SegKitTensor

/// How a segmentation network becomes an ONNX model.
public struct ONNXExportOptions: Sendable {
  /// The input size the graph is written for (with `openSizes`, the size it is
  /// recorded near).
  public var height: Int
  public var width: Int
  public var opset = 17
  /// Leave batch, height and width open: the graph takes any size the network takes.
  public var openSizes = false
  /// Take a uint8 NHWC RGB image (`image`) and normalise inside the graph, instead
  /// of the float32 NCHW tensor SegKit's forward takes (`input`).
  public var bakePreprocessing = false
  /// Add `labels`: the argmax of `out` over the classes (int64, N×H×W).
  public var argmax = false

  public init(height: Int, width: Int) {
    self.height = height
    self.width = width
  }
}

/// ONNX export of SegKit's networks: the network (batch norm folded into its
/// convolutions) runs on an input of the chosen size while its tensor operations are
/// recorded, and `ONNXGraphWriter` writes them as a graph. For open sizes it runs at
/// four sizes and the writer computes each traced size from the input's shape.
public enum ONNXExport {
  /// The ONNX model of a segmentation network; `metadata` goes into metadata_props.
  public static func model(
    of network: any SegmentationNetwork, options: ONNXExportOptions, normalization: InputNormalization,
    metadata: [String: String] = [:]
  ) throws -> Onnx_ModelProto {
    try checkImageSize(options.height, options.width)
    network.eval()
    _ = try network.foldBatchNorm()
    let sizes = options.openSizes
      ? recordingSizes(height: options.height, width: options.width) : [(1, options.height, options.width)]
    var outputNames: [String] = []
    let recordings = try sizes.map { batch, height, width in
      let input = options.bakePreprocessing
        ? try Tensor.zeros([batch, height, width, 3], dtype: .uint8) : try Tensor.zeros([batch, 3, height, width])
      return try record(inputs: [input]) { inputs in
        let x = options.bakePreprocessing ? try normalization.normalizedBatch(inputs[0]) : inputs[0]
        let output = try network.forward(x)
        let extras = output.extras.sorted { $0.key < $1.key }
        outputNames = ["out"] + extras.map(\.key) + (options.argmax ? ["labels"] : [])
        return [output.out] + extras.map(\.value) + (options.argmax ? [try output.out.argmax(dim: 1)] : [])
      }
    }
    return try write(recordings, inputNames: [options.bakePreprocessing ? "image" : "input"], outputNames: outputNames,
                     network: network, opset: options.opset, metadata: metadata)
  }

  /// The ONNX model of a FlowNetS (FlowNet2-S or DVSNet's thin one): inputs `first` and
  /// `second`, float32 1×3×H×W RGB frames with values 0…255; outputs `flow`, the flow
  /// from first to second in pixels (1×2×H×W, channel 0 horizontal, as
  /// `FlowNetS.flow(from:to:)`), `features` (conv6_1, which DVSNet's decision network
  /// reads) and, with a scale head, `scale` (the per-class scale field).
  public static func flowModel(
    of network: FlowNetS, height: Int, width: Int, opset: Int = 17, openSizes: Bool = false,
    metadata: [String: String] = [:]
  ) throws -> Onnx_ModelProto {
    try checkImageSize(height, width)
    network.eval()
    let sizes = openSizes ? recordingSizes(height: height, width: width) : [(1, height, width)]
    var outputNames: [String] = []
    let recordings = try sizes.map { batch, height, width in
      try record(inputs: [try Tensor.zeros([batch, 3, height, width]), try Tensor.zeros([batch, 3, height, width])]) { frames in
        let result = try network.flowAndOutput(from: frames[0], to: frames[1])
        outputNames = ["flow", "features"] + (result.output.scale == nil ? [] : ["scale"])
        return [result.flow, result.output.features] + (result.output.scale.map { [$0] } ?? [])
      }
    }
    return try write(recordings, inputNames: ["first", "second"], outputNames: outputNames,
                     network: network, opset: opset, metadata: metadata)
  }

  /// The ONNX model of DVSNet's decision network: input `features`, float32 N×C×h×w
  /// (the flow network's conv6_1, the flow export's `features`), output `score`, the
  /// predicted confidence in percent (N). The graph is for features of `featureSize`
  /// (by default the network's grid), or of any size with `openSizes`.
  public static func decisionModel(
    of network: DecisionNetwork, featureSize: Size2? = nil, opset: Int = 17, openSizes: Bool = false,
    metadata: [String: String] = [:]
  ) throws -> Onnx_ModelProto {
    let size = featureSize ?? network.grid
    guard (1...1024).contains(size.height), (1...1024).contains(size.width) else {
      throw ExportError("features of \(size.height)×\(size.width) are not a feature map size (1 to 1024)")
    }
    network.eval()
    // Sizes unlike the grid, so that the resize to it is recorded.
    let grid = network.grid
    let sizes = openSizes
      ? [(1, grid.height + 1, grid.width + 3), (2, grid.height + 5, grid.width + 2), (1, grid.height + 3, grid.width + 7),
         (1, grid.height + 9, grid.width + 5)]
      : [(1, size.height, size.width)]
    let recordings = try sizes.map { batch, height, width in
      try record(inputs: [try Tensor.zeros([batch, network.featureChannels, height, width])]) { [try network.forward($0[0])] }
    }
    return try write(recordings, inputNames: ["features"], outputNames: ["score"], network: network, opset: opset, metadata: metadata)
  }

  // MARK: Recording

  private static func checkImageSize(_ height: Int, _ width: Int) throws {
    guard (1...16384).contains(height), (1...16384).contains(width) else {
      throw ExportError("an input of \(height)×\(width) is not an image size (1 to 16384)")
    }
  }

  /// Sizes (batch, height, width) for recording a graph with open sizes: four near
  /// the requested one, odd and even, with other remainders by every power of two up
  /// to 64 (so that 2·⌈h/2⌉ is told from h + 1), none a multiple of 4, height and
  /// width apart by more than 64 in three of them (so that they stay apart once an
  /// encoder pads them to multiples of 32 or 64), one with a batch of two; so that a
  /// size that follows the input is told apart from one that matches it by chance.
  static func recordingSizes(height: Int, width: Int) -> [(Int, Int, Int)] {
    let (h, w) = (height / 64 * 64, width / 64 * 64)
    return [(1, h + 37, w + 45), (2, h + 118, w + 39), (1, h + 171, w + 242), (1, h + 222, w + 155)]
  }

  static func record(inputs: [Tensor], _ body: ([Tensor]) throws -> [Tensor]) throws -> ONNXGraphWriter.Recording {
    let (outputs, trace) = try OperationTrace.record { try Torch.withInferenceMode { try body(inputs) } }
    return ONNXGraphWriter.Recording(trace: trace, inputs: inputs, outputs: outputs)
  }

  static func write(
    _ recordings: [ONNXGraphWriter.Recording], inputNames: [String], outputNames: [String], network: Module, opset: Int,
    metadata: [String: String]
  ) throws -> Onnx_ModelProto {
    // The live tensors (the state dict's are detached copies of the handles).
    var names: [ObjectIdentifier: String] = [:]
    for (name, tensor) in network.namedParameters() + network.namedBuffers() + network.namedFoldedTensors() {
      names[ObjectIdentifier(tensor)] = name
    }
    var writer = recordings.count == 1
      ? try ONNXGraphWriter(trace: recordings[0].trace, opset: opset, constantNames: names)
      : try ONNXGraphWriter(recordings: recordings, opset: opset, constantNames: names)
    return try writer.model(
      inputs: Array(zip(inputNames, recordings[0].inputs)), outputs: Array(zip(outputNames, recordings[0].outputs)),
      metadata: metadata)
  }
}

extension InputNormalization {
  /// uint8 N×H×W×3 RGB images as the normalised float32 N×3×H×W batch the model takes,
  /// in tensor operations (so an ONNX export records it).
  public func normalizedBatch(_ images: Tensor) throws -> Tensor {
    var x = try images.permute(0, 3, 1, 2).to(.float32) / Double(pixelDivisor)
    if channelOrder == .bgr { x = try Tensor.cat([2, 1, 0].map { try x.narrow(dim: 1, start: $0, length: 1) }, dim: 1) }
    return try (x - Tensor(mean, shape: [1, 3, 1, 1])) / Tensor(std, shape: [1, 3, 1, 1])
  }
}

extension ONNXExport {
  /// Refuses an export whose recording is estimated to need more than `MemoryBudget`'s
  /// cap. `export` writes the same graph at a given size with fixed sizes; two small
  /// ones are measured (`MemoryGrowth`) and extended to `size`, once per recording
  /// (four with `openSizes`, which are held together).
  public static func checkMemory(at size: Size2, openSizes: Bool, what: String,
                                 _ export: (Size2) throws -> Onnx_ModelProto) throws {
    guard let growth = MemoryGrowth.measure({ try export($0).serializedData() }) else { return }
    let pixels = size.height * size.width * (openSizes ? 4 : 1)
    try MemoryBudget.check(growth.bytes(pixels: pixels), for: "exporting \(what) at \(size.height)×\(size.width)")
  }
}
