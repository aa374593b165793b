import Foundation
import SegKitModels
import SegKitNN
import SegKitTensor

/// How a segmentation network becomes an ONNX model.
public struct ONNXExportOptions: Sendable {
  /// The input size the graph is written for.
  public var height: Int
  public var width: Int
  public var opset = 17
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

/// ONNX export of SegKit's segmentation networks: the network (batch norm folded
/// into its convolutions) runs once on an input of the chosen size while its
/// tensor operations are recorded, and `ONNXGraphWriter` writes them as a graph.
public enum ONNXExport {
  /// The ONNX model of `network`; `metadata` goes into metadata_props.
  public static func model(
    of network: any SegmentationNetwork, options: ONNXExportOptions, normalization: InputNormalization,
    metadata: [String: String] = [:]
  ) throws -> Onnx_ModelProto {
    guard options.height >= 1, options.width >= 1, options.height <= 16384, options.width <= 16384 else {
      throw ExportError("an input of \(options.height)×\(options.width) is not an image size")
    }
    network.eval()
    _ = try network.foldBatchNorm()
    var names: [ObjectIdentifier: String] = [:]
    for (name, tensor) in try network.stateDict() { names[ObjectIdentifier(tensor)] = name }
    let input = try Tensor.zeros([1, 3, options.height, options.width])
    let (output, trace) = try OperationTrace.record {
      try Torch.withInferenceMode { try network.forward(input) }
    }
    var writer = try ONNXGraphWriter(trace: trace, opset: options.opset, constantNames: names)
    let outputs = [("out", output.out)] + output.extras.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    let image = try Tensor.zeros([1, options.height, options.width, 3], dtype: .uint8)
    return try writer.model(
      inputs: options.bakePreprocessing ? [] : [("input", input)], outputs: outputs, metadata: metadata,
      prelude: { writer in
        guard options.bakePreprocessing else { return }
        try writer.preprocessing(image: "image", into: input, normalization: normalization)
      },
      epilogue: { writer in
        guard options.argmax else { return [] }
        let labels = try Torch.withInferenceMode { try output.out.argmax(dim: 1) }
        let value = writer.add("ArgMax", [try writer.name(of: output.out, readBy: "labels")], [writer.fresh("labels")],
                               [.int("axis", 1), .int("keepdims", 0)])
        return [("labels", value, labels)]
      },
      extraInputs: options.bakePreprocessing ? [("image", image)] : [])
  }
}

extension ONNXGraphWriter {
  /// uint8 NHWC → float32 NCHW, divided by the pixel divisor, minus the mean, over the
  /// standard deviation (channels reversed first for BGR models), bound to `input`.
  mutating func preprocessing(image: String, into input: Tensor, normalization: InputNormalization) throws {
    let float = add("Cast", [image], [fresh("float")], [.int("to", 1)])
    var planes = add("Transpose", [float], [fresh("planes")], [.ints("perm", [0, 3, 1, 2])])
    if normalization.channelOrder == .bgr {
      planes = add("Gather", [planes, try constant([2, 1, 0], stem: "bgr")], [fresh("bgr")], [.int("axis", 1)])
    }
    let scaled = add("Div", [planes, try scalar(Double(normalization.pixelDivisor), dtype: .float32)], [fresh("scaled")])
    let mean = try name(of: try Tensor(normalization.mean, shape: [1, 3, 1, 1]), readBy: "preprocessing")
    let std = try name(of: try Tensor(normalization.std, shape: [1, 3, 1, 1]), readBy: "preprocessing")
    let centred = add("Sub", [scaled, mean], [fresh("centred")])
    bind(input, to: add("Div", [centred, std], [fresh("normalised")]))
  }
}

extension ONNXExport {
  /// The ONNX model of a FlowNetS (FlowNet2-S or DVSNet's thin one): inputs `first` and
  /// `second`, float32 1×3×H×W RGB frames with values 0…255; outputs `flow`, the flow
  /// from first to second in pixels (1×2×H×W, channel 0 horizontal, as
  /// `FlowNetS.flow(from:to:)`), `features` (conv6_1, which DVSNet's decision network
  /// reads) and, with a scale head, `scale` (the per-class scale field).
  public static func flowModel(
    of network: FlowNetS, height: Int, width: Int, opset: Int = 17, metadata: [String: String] = [:]
  ) throws -> Onnx_ModelProto {
    guard height >= 1, width >= 1, height <= 16384, width <= 16384 else {
      throw ExportError("frames of \(height)×\(width) are not an image size")
    }
    network.eval()
    var names: [ObjectIdentifier: String] = [:]
    for (name, tensor) in try network.stateDict() { names[ObjectIdentifier(tensor)] = name }
    let first = try Tensor.zeros([1, 3, height, width]), second = try Tensor.zeros([1, 3, height, width])
    let (result, trace) = try OperationTrace.record {
      try Torch.withInferenceMode { try network.flowAndOutput(from: first, to: second) }
    }
    var writer = try ONNXGraphWriter(trace: trace, opset: opset, constantNames: names)
    var outputs = [("flow", result.flow), ("features", result.output.features)]
    if let scale = result.output.scale { outputs.append(("scale", scale)) }
    return try writer.model(inputs: [("first", first), ("second", second)], outputs: outputs, metadata: metadata)
  }
}
