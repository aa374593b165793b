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
/// From one recording the graph is for the input size it was recorded with: resizes,
/// crops, pads and reshapes carry the sizes they were traced with. From several
/// recordings at different sizes (`init(recordings:)`) those sizes are computed in the
/// graph from its input's shape (`OpenSizes`), and batch, height and width stay open.
public struct ONNXGraphWriter {
  public static let supportedOpsets = 14...17

  /// One run of the computation: its trace, the tensors standing for the graph's
  /// inputs and the tensors it returned as outputs, in the graph's order.
  public struct Recording {
    public let trace: OperationTrace
    public let inputs: [Tensor]
    public let outputs: [Tensor]
    public init(trace: OperationTrace, inputs: [Tensor], outputs: [Tensor]) {
      (self.trace, self.inputs, self.outputs) = (trace, inputs, outputs)
    }
  }

  public let opset: Int
  var trace: OperationTrace
  private var names: [ObjectIdentifier: String] = [:]
  private var nodes: [Onnx_NodeProto] = []
  private var initializers: [Onnx_TensorProto] = []
  var constantNames: [ObjectIdentifier: String]
  private var counter = 0
  var openSizes: OpenSizes?
  var recordedInputs: [Tensor] = []
  var shapeValues: [OpenSizes.Value: String] = [:]
  var dimensionValues: [OpenSizes.Dimension: String] = [:]

  /// `constantNames` names tensors that existed before recording (a state dict's keys).
  public init(trace: OperationTrace, opset: Int = 17, constantNames: [ObjectIdentifier: String] = [:]) throws {
    guard Self.supportedOpsets.contains(opset) else {
      throw ExportError("opset \(opset) is not supported; SegKit writes opsets \(Self.supportedOpsets.lowerBound)–\(Self.supportedOpsets.upperBound)")
    }
    self.trace = trace
    self.opset = opset
    self.constantNames = constantNames
  }

  /// A graph with open sizes from `recordings` of one computation at different input
  /// sizes; nodes are written from the first, sizes from all of them.
  public init(recordings: [Recording], opset: Int = 17, constantNames: [ObjectIdentifier: String] = [:]) throws {
    guard let first = recordings.first, recordings.count >= 2 else {
      throw ExportError("open sizes need recordings at two input sizes or more")
    }
    try self.init(trace: first.trace, opset: opset, constantNames: constantNames)
    recordedInputs = first.inputs
    let trace = first.trace
    openSizes = try OpenSizes(
      traces: recordings.map(\.trace), inputs: recordings.map(\.inputs), outputs: recordings.map(\.outputs),
      describe: { step in Self.layer(near: step, in: trace, names: constantNames) })
  }

  /// The graph: `inputs` in front of the recorded steps (with open sizes, the first
  /// recording's inputs, in order), `outputs` named as given, `metadata` in metadata_props.
  public mutating func model(
    inputs: [(name: String, tensor: Tensor)], outputs: [(name: String, tensor: Tensor)], metadata: [String: String]
  ) throws -> Onnx_ModelProto {
    for (name, tensor) in inputs { names[ObjectIdentifier(tensor)] = name }
    for (index, step) in trace.steps.enumerated() { try write(step, index: index) }
    let dimensionNames = openDimensionNames(inputs.first?.tensor)
    var graph = Onnx_GraphProto()
    graph.name = "segkit"
    graph.input = inputs.map { valueInfo($0.name, $0.tensor, dimensionNames) }
    for (name, tensor) in outputs {
      let value = try self.name(of: tensor, readBy: "output \(name)")
      add("Identity", [value], [name])
      graph.output.append(valueInfo(name, tensor, dimensionNames))
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

  /// The layer a step belongs to, by the state-dict name of the nearest weight a step
  /// at or after it reads (or, failing that, before it).
  static func layer(near step: Int, in trace: OperationTrace, names: [ObjectIdentifier: String]) -> String {
    let steps = trace.steps
    let order = Array(steps.indices.suffix(from: min(step, steps.count))) + (0..<min(step, steps.count)).reversed()
    for index in order {
      for tensor in steps[index].inputs {
        guard let name = names[ObjectIdentifier(tensor)] else { continue }
        let layer = name.split(separator: ".").dropLast().joined(separator: ".")
        let what = OpenSizes.form(steps[step < steps.count ? step : index].operation)
        return "\(what.prefix(60)) \(index == step ? "in" : index > step ? "before" : "after") layer `\(layer)`"
      }
    }
    return "step \(step + 1)"
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

  private mutating func write(_ step: OperationTrace.Step, index: Int) throws {
    let label = "\(step.operation)".prefix(60)
    var inputs: [String] = []
    for tensor in step.inputs { inputs.append(try name(of: tensor, readBy: "\(label)")) }
    let x = inputs.first ?? ""
    if Self.changesNothing(step), openSizes?.traces.allSatisfy({ Self.changesNothing($0.steps[index]) }) ?? true {
      return bind(step.output, to: x)
    }
    let output = fresh("value")
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
      case .exp: add("Exp", [x], [output])
      case .log: add("Log", [x], [output])
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
      } else if let openSizes, let value = openSizes.value(of: step.inputs[0]),
                let shapes = openSizes.shapes[value], !shapes.allSatisfy({ $0.suffix(2) == shapes[0].suffix(2) }) {
        throw ExportError("\(Self.layer(near: index, in: trace, names: constantNames)): adaptive average pooling to \(size.height)×\(size.width) pools windows whose size follows the input's, which ONNX's pooling cannot express; export it at a fixed --height and --width")
      } else if input[2] % size.height == 0 && input[3] % size.width == 0 {
        let kernel = [input[2] / size.height, input[3] / size.width]
        add("AveragePool", [x], [output], [.ints("kernel_shape", kernel), .ints("strides", kernel)])
      } else {
        throw ExportError("adaptive average pooling from \(input[2])×\(input[3]) to \(size.height)×\(size.width) has uneven windows, which ONNX's pooling cannot express; export at a size divisible by the output")
      }
    case .interpolate(let size, let mode, let alignCorners):
      let sizes = try self.sizes({ step in
        guard case .interpolate(let size, _, _) = step.operation else { return [] }
        let shape = step.inputs[0].shape
        return [shape[0], shape[1], size.height, size.width]
      }, step: index, what: "resize target", axis: { $0 })
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
    case .narrow(let dim, _, _):
      func bounds(_ step: OperationTrace.Step) -> [Int] {
        guard case .narrow(_, let start, let length) = step.operation else { return [] }
        return [start, start + length]
      }
      let starts = try sizes({ [bounds($0)[0]] }, step: index, what: "crop start", axis: { _ in dim })
      let ends: String
      do {
        ends = try sizes({ [bounds($0)[1]] }, step: index, what: "crop end", axis: { _ in dim }, clampedTo: { [$0.inputs[0].shape[dim]] })
      } catch {
        // A centred crop: its end is its start plus a length that follows some value.
        let lengths = try sizes({ [bounds($0)[1] - bounds($0)[0]] }, step: index, what: "crop length", axis: { _ in dim })
        ends = add("Add", [starts, lengths], [fresh("ends")])
      }
      add("Slice", [x, starts, ends, try constant([dim], stem: "axes")], [output])
    case .pad(_, let mode, let value):
      // torch lists (begin, end) pairs from the last dimension; ONNX all begins, then all ends.
      let amounts = try sizes({ step in
        guard case .pad(let pads, _, _) = step.operation else { return [] }
        let rank = step.inputs[0].rank
        var begins = [Int](repeating: 0, count: rank), ends = [Int](repeating: 0, count: rank)
        for pair in 0..<(pads.count / 2) {
          begins[rank - 1 - pair] = pads[2 * pair]
          ends[rank - 1 - pair] = pads[2 * pair + 1]
        }
        return begins + ends
      }, step: index, what: "pad amount", axis: { $0 % step.inputs[0].rank })
      let onnxMode: String
      switch mode {
      case .constant: onnxMode = "constant"
      case .reflect: onnxMode = "reflect"
      case .replicate: onnxMode = "edge"
      case .circular: throw ExportError("circular padding has no ONNX Pad equivalent in opset \(opset)")
      }
      add("Pad", [x, amounts, try scalar(value, dtype: dtype)], [output], [.string("mode", onnxMode)])
    case .reshape, .expand:
      func target(_ step: OperationTrace.Step) -> [Int] {
        switch step.operation {
        case .reshape(let shape), .expand(let shape): return shape
        default: return []
        }
      }
      let type: String
      if case .reshape = step.operation { type = "Reshape" } else { type = "Expand" }
      add(type, [x, try sizes(target, step: index, what: "\(type.lowercased()) size")], [output])
    case .permute(let dims):
      add("Transpose", [x], [output], [.ints("perm", dims)])
    case .mean(let dims, let keepDim):
      let axes = dims.isEmpty ? Array(0..<step.inputs[0].rank) : dims
      add("ReduceMean", [x], [output], [.ints("axes", axes), .int("keepdims", keepDim ? 1 : 0)])
    case .reduce(let kind, let dims, let keepDim):
      let axes = dims.isEmpty ? Array(0..<step.inputs[0].rank) : dims.map { $0 < 0 ? $0 + step.inputs[0].rank : $0 }
      switch kind {
      // ReduceSum takes its axes as an input from opset 13, ReduceMax and ReduceProd from opset 18.
      case .sum: add("ReduceSum", [x, try constant(axes, stem: "axes")], [output], [.int("keepdims", keepDim ? 1 : 0)])
      case .max: add("ReduceMax", [x], [output], [.ints("axes", axes), .int("keepdims", keepDim ? 1 : 0)])
      case .prod: add("ReduceProd", [x], [output], [.ints("axes", axes), .int("keepdims", keepDim ? 1 : 0)])
      }
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

  /// A resize to the same size, a crop that keeps everything or a pad of nothing:
  /// left out of the graph when it is one at every recorded size.
  static func changesNothing(_ step: OperationTrace.Step) -> Bool {
    switch step.operation {
    case .interpolate, .narrow: return step.inputs[0].shape == step.output.shape
    case .pad(let pads, _, _): return pads.allSatisfy { $0 == 0 }
    default: return false
    }
  }
}
