import Foundation
import SegKitTensor

/// The sizes of a graph whose batch, height and width stay open: the same network
/// recorded at several input sizes, step by step, so that every size a step was
/// traced with (a resize target, a crop, a pad, a reshape) can be written as a
/// function of the shapes of values computed before it.
///
/// A size that is the same in every recording is a constant. One that changes is
/// matched against a short list of forms a network's glue takes: the size of an
/// earlier value (resize or crop to a skip connection or the input), a multiple of
/// one (upsampling by a factor), one plus a constant, the difference of two (pad to
/// match), half a difference (centre crop), the padding up to a multiple (an encoder
/// that needs multiples of 32). The recordings are made at sizes unlike each other in
/// every small divisor, so a match in all of them is the rule the network follows,
/// not a coincidence. Anything else is an error naming the layer.
struct OpenSizes {
  /// A value of the graph: an input, or the output of a recorded step.
  enum Value: Hashable {
    case input(Int)
    case step(Int)
  }

  struct Dimension: Hashable {
    let value: Value
    let axis: Int
  }

  indirect enum Size: Equatable {
    case constant(Int)
    case dimension(Dimension)
    case product(Size, Int)
    case sum(Size, Int)
    case difference(Size, Size)
    case half(Size)
    /// (m - x mod m) mod m: what padding x up to a multiple of m adds.
    case paddingToMultiple(Size, Int)
  }

  let traces: [OperationTrace]
  /// Every value's shape in each recording.
  private(set) var shapes: [Value: [[Int]]] = [:]
  private var keys: [[ObjectIdentifier: Value]]
  private let describe: (Int) -> String

  /// `inputs[t]` and `outputs[t]` are recording t's graph inputs and outputs, in the
  /// same order in every recording; `describe(step)` names the layer around a step.
  init(traces: [OperationTrace], inputs: [[Tensor]], outputs: [[Tensor]], describe: @escaping (Int) -> String) throws {
    precondition(traces.count >= 2 && inputs.count == traces.count && outputs.count == traces.count)
    self.traces = traces
    self.describe = describe
    keys = Array(repeating: [:], count: traces.count)
    for (index, _) in inputs[0].enumerated() {
      shapes[.input(index)] = inputs.map { $0[index].shape }
      for t in traces.indices { keys[t][ObjectIdentifier(inputs[t][index])] = .input(index) }
    }
    let count = traces[0].steps.count
    guard traces.allSatisfy({ $0.steps.count == count }) else {
      throw ExportError("the network runs \(traces.map { String($0.steps.count) }.joined(separator: ", ")) operations at different input sizes; export it at a fixed --height and --width")
    }
    for index in 0..<count {
      let steps = traces.map { $0.steps[index] }
      let form = Self.form(steps[0].operation)
      if let other = steps.first(where: { Self.form($0.operation) != form }) {
        throw ExportError("\(describe(index)) does \(form) at one input size and \(Self.form(other.operation)) at another, so its graph cannot keep the size open; export it at a fixed --height and --width")
      }
      for position in steps[0].inputs.indices {
        let read = steps.enumerated().map { t, step in keys[t][ObjectIdentifier(step.inputs[position])] }
        guard read.allSatisfy({ $0 == read[0] }) else {
          throw ExportError("\(describe(index)) reads different values at different input sizes; export it at a fixed --height and --width")
        }
        if read[0] == nil { try checkConstant(steps.map { $0.inputs[position] }, at: index) }
      }
      shapes[.step(index)] = steps.map { $0.output.shape }
      for t in traces.indices { keys[t][ObjectIdentifier(steps[t].output)] = .step(index) }
    }
    for position in outputs[0].indices {
      let values = outputs.enumerated().map { t, tensors in keys[t][ObjectIdentifier(tensors[position])] }
      guard values.allSatisfy({ $0 == values[0] }) else {
        throw ExportError("output \(position + 1) is a different value at different input sizes; export it at a fixed --height and --width")
      }
    }
  }

  /// A tensor read as a constant must be the same at every input size.
  private func checkConstant(_ tensors: [Tensor], at step: Int) throws {
    let first = tensors[0]
    for tensor in tensors.dropFirst() where tensor !== first {
      guard tensor.shape == first.shape, tensor.dtype == first.dtype,
            try tensor.to(.cpu).allClose(first.to(.cpu), rtol: 0, atol: 0)
      else {
        throw ExportError("\(describe(step)) reads a constant computed from the input size (\(first.shape) at one size, \(tensor.shape) at another), so its graph cannot keep the size open; export it at a fixed --height and --width")
      }
    }
  }

  /// The operation without the sizes that may follow the input.
  static func form(_ operation: OperationTrace.Operation) -> String {
    switch operation {
    case .interpolate(_, let mode, let alignCorners): return "a \(mode) resize\(alignCorners ? " (corners aligned)" : "")"
    case .narrow(let dim, _, _): return "a crop of dimension \(dim)"
    case .pad(let pads, let mode, let value): return "a \(mode) pad (\(pads.count) sides, value \(value))"
    case .reshape(let shape): return "a reshape to \(shape.count) dimensions"
    case .expand(let shape): return "an expand to \(shape.count) dimensions"
    default: return "\(operation)"
    }
  }

  /// The value `tensor` of the first recording is, if a graph input or a step made it.
  func value(of tensor: Tensor) -> Value? { keys[0][ObjectIdentifier(tensor)] }

  /// The tensor holding `value` in the first recording.
  func tensor(_ value: Value, inputs: [Tensor]) -> Tensor {
    switch value {
    case .input(let index): return inputs[index]
    case .step(let index): return traces[0].steps[index].output
    }
  }

  /// `sizes` (one per recording) as a function of earlier values' sizes; nil when
  /// no form fits. Forms of the step's own input (`preferred[0]`) come first: a
  /// small vector such as [1, 1, 0, 1] fits some form of some unrelated value by
  /// chance, but rarely one of the value the step crops or pads.
  ///
  /// `axis` is the dimension of that input the size belongs to, where it belongs to
  /// one (a crop's or a pad's): its forms are tried alone, before any other.
  /// A crop's end may be `clamped` to the size of the dimension it crops (ONNX's Slice
  /// clamps too): a crop to another value's size that at some sizes keeps everything.
  func resolve(_ sizes: [Int], before step: Int, preferring preferred: [Tensor], axis: Int? = nil, clamped: [Int]? = nil) -> Size? {
    if sizes.allSatisfy({ $0 == sizes[0] }) { return .constant(sizes[0]) }
    let atoms = dimensions(before: step, preferring: preferred.compactMap(value(of:)))
    if let atom = atoms.first(where: { $0.sizes == sizes }) { return .dimension(atom.dimension) }
    let own = preferred.first.flatMap(value(of:))
    let inputAtoms = atoms.filter { $0.dimension.value == own && (axis == nil || $0.dimension.axis == axis) }
    for atom in inputAtoms {
      if let form = Self.linear(sizes, of: atom) { return form }
      for power in 1...6 where zip(sizes, atom.sizes).allSatisfy({ $0 == ((1 << power) - $1 % (1 << power)) % (1 << power) }) {
        return .paddingToMultiple(.dimension(atom.dimension), 1 << power)
      }
      for other in atoms where other.dimension != atom.dimension {
        let differences = zip(atom.sizes, other.sizes).map { $0 - $1 }
        if differences.allSatisfy({ $0 >= 0 }), differences.map({ $0 / 2 }) == sizes {
          return .half(.difference(.dimension(atom.dimension), .dimension(other.dimension)))
        }
        if differences == sizes { return .difference(.dimension(atom.dimension), .dimension(other.dimension)) }
        if differences.map({ -$0 }) == sizes { return .difference(.dimension(other.dimension), .dimension(atom.dimension)) }
      }
    }
    for atom in atoms where atom.dimension.value != own {
      if let form = Self.linear(sizes, of: atom) { return form }
    }
    if let clamped {
      for atom in atoms where zip(zip(sizes, atom.sizes), clamped).allSatisfy({ $0.0 == Swift.min($0.1, $1) }) {
        return .dimension(atom.dimension)
      }
    }
    return nil
  }

  /// k × atom (an upsampling by k) or atom + c.
  private static func linear(_ sizes: [Int], of atom: (dimension: Dimension, sizes: [Int])) -> Size? {
    let factor = sizes[0] / Swift.max(atom.sizes[0], 1)
    if factor >= 2, zip(sizes, atom.sizes).allSatisfy({ $0 == factor * $1 }) { return .product(.dimension(atom.dimension), factor) }
    let offset = sizes[0] - atom.sizes[0]
    if zip(sizes, atom.sizes).allSatisfy({ $0 - $1 == offset }) { return .sum(.dimension(atom.dimension), offset) }
    return nil
  }

  /// The sizes of values made before `step` that change with the input, one per
  /// distinct sequence of sizes: the preferred values first, then the latest.
  private func dimensions(before step: Int, preferring preferred: [Value]) -> [(dimension: Dimension, sizes: [Int])] {
    var order = preferred
    order += (0..<step).reversed().map { Value.step($0) }
    order += shapes.keys.filter { if case .input = $0 { return true } else { return false } }
      .sorted { "\($0)" < "\($1)" }
    var seen: Set<[Int]> = []
    var atoms: [(Dimension, [Int])] = []
    for value in order {
      guard let shapes = shapes[value] else { continue }
      for axis in shapes[0].indices where shapes.allSatisfy({ $0.count == shapes[0].count }) {
        let sizes = shapes.map { $0[axis] }
        guard !sizes.allSatisfy({ $0 == sizes[0] }), seen.insert(sizes).inserted else { continue }
        atoms.append((Dimension(value: value, axis: axis), sizes))
      }
    }
    return atoms
  }
}

extension ONNXGraphWriter {
  /// A 1-D int64 value holding the sizes a step was traced with (`sizes` reads them
  /// from that step in a recording): constants, or with open sizes computed from the
  /// shapes they follow. `what` names them in an error.
  mutating func sizes(
    _ sizes: (OperationTrace.Step) -> [Int], step index: Int, what: String, axis: ((Int) -> Int)? = nil,
    clampedTo clamp: ((OperationTrace.Step) -> [Int])? = nil
  ) throws -> String {
    let traced = sizes(trace.steps[index])
    guard let openSizes else { return try constant(traced) }
    let recorded = openSizes.traces.map { sizes($0.steps[index]) }
    if recorded.allSatisfy({ $0 == traced }) { return try constant(traced) }
    var parts: [String] = []
    for position in traced.indices {
      let values = recorded.map { $0[position] }
      let clamped = clamp.map { clamp in openSizes.traces.map { clamp($0.steps[index])[position] } }
      guard let size = openSizes.resolve(
        values, before: index, preferring: trace.steps[index].inputs, axis: axis?(position), clamped: clamped)
      else {
        let layer = Self.layer(near: index, in: trace, names: constantNames)
        throw ExportError("\(layer): \(what) \(position) is \(values.map(String.init).joined(separator: ", ")) at input sizes \(inputSizes), which the exporter cannot compute from the input's shape; export it at a fixed --height and --width")
      }
      parts.append(try value(of: size))
    }
    return add("Concat", parts, [fresh("sizes")], [.int("axis", 0)])
  }

  var inputSizes: String {
    guard let openSizes, let shapes = openSizes.shapes[.input(0)] else { return "" }
    return shapes.map { $0.map(String.init).joined(separator: "×") }.joined(separator: ", ")
  }

  /// `size` as a graph value of one int64.
  mutating func value(of size: OpenSizes.Size) throws -> String {
    switch size {
    case .constant(let value):
      return try constant([value])
    case .dimension(let dimension):
      if let value = dimensionValues[dimension] { return value }
      let shape: String
      if let known = shapeValues[dimension.value] {
        shape = known
      } else {
        let tensor = openSizes!.tensor(dimension.value, inputs: recordedInputs)
        shape = add("Shape", [try name(of: tensor, readBy: "a shape")], [fresh("shape")])
        shapeValues[dimension.value] = shape
      }
      let value = add("Gather", [shape, try constant([dimension.axis], stem: "axis")], [fresh("size")], [.int("axis", 0)])
      dimensionValues[dimension] = value
      return value
    case .product(let size, let factor):
      return add("Mul", [try value(of: size), try constant([factor])], [fresh("size")])
    case .sum(let size, let offset):
      return add("Add", [try value(of: size), try constant([offset])], [fresh("size")])
    case .difference(let a, let b):
      return add("Sub", [try value(of: a), try value(of: b)], [fresh("size")])
    case .half(let size):
      return add("Div", [try value(of: size), try constant([2])], [fresh("size")])
    case .paddingToMultiple(let size, let multiple):
      let m = try constant([multiple])
      let remainder = add("Mod", [try value(of: size), m], [fresh("size")])
      return add("Mod", [add("Sub", [m, remainder], [fresh("size")]), m], [fresh("size")])
    }
  }

  /// With open sizes, names for the dimensions that change with the input: batch,
  /// height and width after the first input's changing axes, `dim_k` for others.
  func openDimensionNames(_ input: Tensor?) -> [[Int]: String] {
    guard let openSizes, let input, let value = openSizes.value(of: input), let shapes = openSizes.shapes[value] else { return [:] }
    var names: [[Int]: String] = [:]
    let changing = shapes[0].indices.filter { axis in !shapes.allSatisfy { $0[axis] == shapes[0][axis] } }
    for (axis, name) in zip(changing, ["batch", "height", "width"]) { names[shapes.map { $0[axis] }] = name }
    return names
  }

  func valueInfo(_ name: String, _ tensor: Tensor, _ dimensionNames: [[Int]: String]) -> Onnx_ValueInfoProto {
    var info = Self.valueInfo(name, tensor)
    guard let openSizes, let value = openSizes.value(of: tensor), let shapes = openSizes.shapes[value] else { return info }
    var dims = info.type.tensorType.shape.dim
    for axis in dims.indices where !shapes.allSatisfy({ $0[axis] == shapes[0][axis] }) {
      dims[axis] = Onnx_TensorShapeProto.Dimension()
      dims[axis].dimParam = dimensionNames[shapes.map { $0[axis] }] ?? "\(name)_dim\(axis)"
    }
    info.type.tensorType.shape.dim = dims
    return info
  }

}
