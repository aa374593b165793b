import Foundation
import SegKitTensor

/// An export that cannot be written: the operation, setting or value is named.
public struct ExportError: Error, CustomStringConvertible, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// Writes a recorded computation (`OperationTrace`) as an ONNX graph: each recorded
/// operation becomes its ONNX node(s), tensors that existed before recording become
/// initializers under their state-dict names, and a value that an unknown
/// operation made is an error naming the operation that read it.
///
/// Shapes are those of the traced input: reshapes and resizes carry the sizes they
/// were traced with, so the graph is for that input size.
public struct ONNXGraphWriter {
  public static let supportedOpsets = 14...17

  public let opset: Int
  private var trace: OperationTrace
  private var names: [ObjectIdentifier: String] = [:]
  private var nodes: [Onnx_NodeProto] = []
  private var initializers: [Onnx_TensorProto] = []
  private var constantNames: [ObjectIdentifier: String]
  private var counter = 0

  /// `constantNames` names tensors that existed before recording (a state dict's keys).
  public init(trace: OperationTrace, opset: Int = 17, constantNames: [ObjectIdentifier: String] = [:]) throws {
    guard Self.supportedOpsets.contains(opset) else {
      throw ExportError("opset \(opset) is not supported; SegKit writes opsets \(Self.supportedOpsets.lowerBound)–\(Self.supportedOpsets.upperBound)")
    }
    self.trace = trace
    self.opset = opset
    self.constantNames = constantNames
  }

  /// The model: `inputs` (graph inputs with the tensors traced for them) in front of
  /// the recorded steps, `outputs` named as given, `metadata` in metadata_props.
  /// `prelude` may add nodes before the steps (binding traced tensors to them),
  /// `epilogue` extra outputs after them; `extraInputs` are graph inputs the
  /// prelude reads.
  public mutating func model(
    inputs: [(name: String, tensor: Tensor)], outputs: [(name: String, tensor: Tensor)], metadata: [String: String],
    prelude: (inout ONNXGraphWriter) throws -> Void = { _ in },
    epilogue: (inout ONNXGraphWriter) throws -> [(name: String, value: String, tensor: Tensor)] = { _ in [] },
    extraInputs: [(name: String, tensor: Tensor)] = []
  ) throws -> Onnx_ModelProto {
    for (name, tensor) in inputs { names[ObjectIdentifier(tensor)] = name }
    try prelude(&self)
    for step in trace.steps { try write(step) }
    var graph = Onnx_GraphProto()
    graph.name = "segkit"
    graph.input = (inputs + extraInputs).map { Self.valueInfo($0.name, $0.tensor) }
    for (name, tensor) in outputs {
      let value = try self.name(of: tensor, readBy: "output \(name)")
      add("Identity", [value], [name])
      graph.output.append(Self.valueInfo(name, tensor))
    }
    for extra in try epilogue(&self) {
      add("Identity", [extra.value], [extra.name])
      graph.output.append(Self.valueInfo(extra.name, extra.tensor))
    }
    graph.node = nodes
    graph.initializer = initializers
    var model = Onnx_ModelProto()
    model.irVersion = 8
    model.producerName = "SegKit"
    var set = Onnx_OperatorSetIdProto()
    set.domain = ""
    set.version = Int64(opset)
    model.opsetImport = [set]
    model.graph = graph
    model.metadataProps = metadata.sorted { $0.key < $1.key }.map { key, value in
      var entry = Onnx_StringStringEntryProto()
      entry.key = key
      entry.value = value
      return entry
    }
    return model
  }

  // MARK: Values

  /// The graph value holding `tensor`: an input, a step's output or a constant.
  mutating func name(of tensor: Tensor, readBy reader: @autoclosure () -> String) throws -> String {
    let id = ObjectIdentifier(tensor)
    guard !trace.isUnexplained(tensor) else {
      throw ExportError("\(reader()) reads a \(tensor.shape) tensor that an operation the ONNX exporter does not know made or changed in place")
    }
    if let name = names[id] { return name }
    let name = constantNames[id] ?? fresh("constant")
    initializers.append(try Self.tensorProto(tensor, name: name))
    names[id] = name
    return name
  }

  mutating func fresh(_ stem: String) -> String {
    counter += 1
    return "\(stem)_\(counter)"
  }

  /// A new initializer holding `values` (int64, 1-D).
  mutating func constant(_ values: [Int], stem: String = "shape") throws -> String {
    let name = fresh(stem)
    initializers.append(try Self.tensorProto(try Tensor(values.map(Int64.init), shape: [values.count]), name: name))
    return name
  }

  /// A new scalar initializer of `dtype`.
  mutating func scalar(_ value: Double, dtype: DType) throws -> String {
    let name = fresh("scalar")
    initializers.append(try Self.tensorProto(try Tensor.full([], value, dtype: dtype), name: name))
    return name
  }

  @discardableResult
  mutating func add(_ type: String, _ inputs: [String], _ outputs: [String], _ attributes: [Onnx_AttributeProto] = []) -> String {
    var node = Onnx_NodeProto()
    node.opType = type
    node.name = "\(type)_\(nodes.count)"
    node.input = inputs
    node.output = outputs
    node.attribute = attributes
    nodes.append(node)
    return outputs.first ?? ""
  }

  /// Binds the graph value `name` to `tensor`, so later steps reading it find it.
  mutating func bind(_ tensor: Tensor, to name: String) { names[ObjectIdentifier(tensor)] = name }

  // MARK: Steps

  private mutating func write(_ step: OperationTrace.Step) throws {
    let label = "\(step.operation)".prefix(60)
    var inputs: [String] = []
    for tensor in step.inputs { inputs.append(try name(of: tensor, readBy: "\(label)")) }
    let output = fresh("value")
    let x = inputs.first ?? ""
    let dtype = step.output.dtype
    switch step.operation {
    case .conv2d(let stride, let padding, let dilation, let groups):
      add("Conv", inputs, [output], [
        .ints("kernel_shape", Array(step.inputs[1].shape.suffix(2))), .ints("strides", stride.pair),
        .ints("pads", padding.pair + padding.pair), .ints("dilations", dilation.pair), .int("group", groups)])
    case .convTranspose2d(let stride, let padding, let outputPadding, let dilation, let groups):
      add("ConvTranspose", inputs, [output], [
        .ints("kernel_shape", Array(step.inputs[1].shape.suffix(2))), .ints("strides", stride.pair),
        .ints("pads", padding.pair + padding.pair), .ints("output_padding", outputPadding.pair),
        .ints("dilations", dilation.pair), .int("group", groups)])
    case .batchNorm(let eps, let hasWeight, let hasBias):
      let channels = step.inputs[0].shape[1]
      var operands = [x]
      var index = 1
      operands.append(hasWeight ? inputs[index] : try name(of: try Tensor.ones([channels], dtype: dtype), readBy: "batch norm"))
      if hasWeight { index += 1 }
      operands.append(hasBias ? inputs[index] : try name(of: try Tensor.zeros([channels], dtype: dtype), readBy: "batch norm"))
      if hasBias { index += 1 }
      operands += [inputs[index], inputs[index + 1]]
      add("BatchNormalization", operands, [output], [.float("epsilon", eps)])
    case .binary(let kind):
      add(kind.onnx, inputs, [output])
    case .binaryScalar(let kind, let value, let scalarFirst):
      let constant = try scalar(value, dtype: dtype)
      add(kind.onnx, scalarFirst ? [constant, x] : [x, constant], [output])
    case .unary(let kind):
      switch kind {
      case .relu: add("Relu", [x], [output])
      case .relu6: add("Clip", [x, try scalar(0, dtype: dtype), try scalar(6, dtype: dtype)], [output])
      case .sigmoid: add("Sigmoid", [x], [output])
      case .hardswish: add("HardSwish", [x], [output])
      case .hardsigmoid: add("HardSigmoid", [x], [output], [.float("alpha", 1.0 / 6), .float("beta", 0.5)])
      case .tanh: add("Tanh", [x], [output])
      }
    case .leakyReLU(let slope):
      add("LeakyRelu", [x], [output], [.float("alpha", slope)])
    case .clamp(let low, let high):
      add("Clip", [x, try low.map { try scalar($0, dtype: dtype) } ?? "", try high.map { try scalar($0, dtype: dtype) } ?? ""], [output])
    case .maxPool2d(let kernel, let stride, let padding, let dilation, let ceilMode):
      add("MaxPool", [x], [output], [
        .ints("kernel_shape", kernel.pair), .ints("strides", stride.pair), .ints("pads", padding.pair + padding.pair),
        .ints("dilations", dilation.pair), .int("ceil_mode", ceilMode ? 1 : 0)])
    case .avgPool2d(let kernel, let stride, let padding, let ceilMode, let countIncludePad):
      add("AveragePool", [x], [output], [
        .ints("kernel_shape", kernel.pair), .ints("strides", stride.pair), .ints("pads", padding.pair + padding.pair),
        .int("ceil_mode", ceilMode ? 1 : 0), .int("count_include_pad", countIncludePad ? 1 : 0)])
    case .adaptiveAvgPool2d(let size):
      let input = step.inputs[0].shape
      if size.height == 1 && size.width == 1 {
        add("GlobalAveragePool", [x], [output])
      } else if input[2] % size.height == 0 && input[3] % size.width == 0 {
        let kernel = [input[2] / size.height, input[3] / size.width]
        add("AveragePool", [x], [output], [.ints("kernel_shape", kernel), .ints("strides", kernel)])
      } else {
        throw ExportError("adaptive average pooling from \(input[2])×\(input[3]) to \(size.height)×\(size.width) has uneven windows, which ONNX's pooling cannot express; export at a size divisible by the output")
      }
    case .interpolate(let size, let mode, let alignCorners):
      let shape = step.inputs[0].shape
      let sizes = try constant([shape[0], shape[1], size.height, size.width], stem: "sizes")
      var attributes: [Onnx_AttributeProto]
      switch mode {
      case .nearest:
        attributes = [.string("mode", "nearest"), .string("coordinate_transformation_mode", "asymmetric"), .string("nearest_mode", "floor")]
      case .bilinear:
        attributes = [.string("mode", "linear"), .string("coordinate_transformation_mode", alignCorners ? "align_corners" : "pytorch_half_pixel")]
      case .bicubic:
        attributes = [.string("mode", "cubic"), .float("cubic_coeff_a", -0.75),
                      .string("coordinate_transformation_mode", alignCorners ? "align_corners" : "pytorch_half_pixel")]
      case .nearestExact:
        attributes = [.string("mode", "nearest"), .string("coordinate_transformation_mode", "half_pixel"),
                      .string("nearest_mode", "round_prefer_ceil")]
      }
      add("Resize", [x, "", "", sizes], [output], attributes)
    case .concatenate(let dim):
      add("Concat", inputs, [output], [.int("axis", dim)])
    case .narrow(let dim, let start, let length):
      add("Slice", [x, try constant([start], stem: "starts"), try constant([start + length], stem: "ends"), try constant([dim], stem: "axes")], [output])
    case .pad(let pads, let mode, let value):
      let rank = step.inputs[0].rank
      var begins = [Int](repeating: 0, count: rank), ends = [Int](repeating: 0, count: rank)
      for pair in 0..<(pads.count / 2) {
        begins[rank - 1 - pair] = pads[2 * pair]
        ends[rank - 1 - pair] = pads[2 * pair + 1]
      }
      let onnxMode: String
      switch mode {
      case .constant: onnxMode = "constant"
      case .reflect: onnxMode = "reflect"
      case .replicate: onnxMode = "edge"
      case .circular: throw ExportError("circular padding has no ONNX Pad equivalent in opset \(opset)")
      }
      add("Pad", [x, try constant(begins + ends, stem: "pads"), try scalar(value, dtype: dtype)], [output], [.string("mode", onnxMode)])
    case .reshape(let shape):
      add("Reshape", [x, try constant(shape)], [output])
    case .permute(let dims):
      add("Transpose", [x], [output], [.ints("perm", dims)])
    case .expand(let shape):
      add("Expand", [x, try constant(shape)], [output])
    case .mean(let dims, let keepDim):
      let axes = dims.isEmpty ? Array(0..<step.inputs[0].rank) : dims
      add("ReduceMean", [x], [output], [.ints("axes", axes), .int("keepdims", keepDim ? 1 : 0)])
    case .linear(let hasBias):
      guard step.inputs[0].rank == 2 else {
        throw ExportError("linear on a \(step.inputs[0].rank)-D input: SegKit's export writes Gemm for 2-D inputs only")
      }
      add("Gemm", inputs, [output], [.int("transB", 1)])
      _ = hasBias
    case .softmax(let dim):
      add("Softmax", [x], [output], [.int("axis", dim)])
    case .argmax(let dim, let keepDim):
      add("ArgMax", [x], [output], [.int("axis", dim), .int("keepdims", keepDim ? 1 : 0)])
    case .identity:
      add("Identity", [x], [output])
    case .cast(let type):
      add("Cast", [x], [output], [.int("to", Int(try Self.elementType(type)))])
    }
    bind(step.output, to: output)
  }

  // MARK: Protobuf values

  static func tensorProto(_ tensor: Tensor, name: String) throws -> Onnx_TensorProto {
    var proto = Onnx_TensorProto()
    proto.name = name
    proto.dims = tensor.shape.map(Int64.init)
    proto.dataType = try elementType(tensor.dtype)
    proto.rawData = try tensor.to(.cpu).contiguous().data()
    return proto
  }

  static func elementType(_ dtype: DType) throws -> Int32 {
    switch dtype {
    case .float32: return 1
    case .uint8: return 2
    case .int8: return 3
    case .int16: return 5
    case .int32: return 6
    case .int64: return 7
    case .bool: return 9
    case .float16: return 10
    case .float64: return 11
    case .bfloat16: return 16
    }
  }

  static func valueInfo(_ name: String, _ tensor: Tensor) -> Onnx_ValueInfoProto {
    var info = Onnx_ValueInfoProto()
    info.name = name
    var type = Onnx_TypeProto.Tensor()
    type.elemType = (try? elementType(tensor.dtype)) ?? 0
    var shape = Onnx_TensorShapeProto()
    shape.dim = tensor.shape.map { size in
      var dim = Onnx_TensorShapeProto.Dimension()
      dim.dimValue = Int64(size)
      return dim
    }
    type.shape = shape
    var typeProto = Onnx_TypeProto()
    typeProto.tensorType = type
    info.type = typeProto
    return info
  }
}

extension OperationTrace.Binary {
  var onnx: String {
    switch self {
    case .add: return "Add"
    case .sub: return "Sub"
    case .mul: return "Mul"
    case .div: return "Div"
    }
  }
}

extension Size2 {
  var pair: [Int] { [height, width] }
}

extension Onnx_AttributeProto {
  static func int(_ name: String, _ value: Int) -> Onnx_AttributeProto {
    var attribute = Onnx_AttributeProto()
    attribute.name = name
    attribute.type = .int
    attribute.i = Int64(value)
    return attribute
  }

  static func ints(_ name: String, _ values: [Int]) -> Onnx_AttributeProto {
    var attribute = Onnx_AttributeProto()
    attribute.name = name
    attribute.type = .ints
    attribute.ints = values.map(Int64.init)
    return attribute
  }

  static func float(_ name: String, _ value: Double) -> Onnx_AttributeProto {
    var attribute = Onnx_AttributeProto()
    attribute.name = name
    attribute.type = .float
    attribute.f = Float(value)
    return attribute
  }

  static func string(_ name: String, _ value: String) -> Onnx_AttributeProto {
    var attribute = Onnx_AttributeProto()
    attribute.name = name
    attribute.type = .string
    attribute.s = Data(value.utf8)
    return attribute
  }
}
