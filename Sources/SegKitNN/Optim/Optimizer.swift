/// Updates parameters from their gradients, as a torch.optim optimizer.
///
/// The caller owns the schedule: `step(learningRate:)` takes the base rate for this
/// step and each group uses base × its `learningRateMultiplier`. Parameters without
/// a gradient are skipped and get no state, as in PyTorch.
///
/// State is exported as named tensors, "param.<i>.<name>" with i the parameter's
/// position across all groups in order (the numbering of torch's state_dict), e.g.
/// "param.3.momentum_buffer", "param.0.exp_avg", "param.0.step" (a 0-d float32 count).
public protocol Optimizer: AnyObject {
  var parameterGroups: [ParameterGroup] { get }
  func step(learningRate: Double) throws
  func stateTensors() throws -> [(String, Tensor)]
  /// Restores what `stateTensors()` exported (copies, moved to each parameter's device).
  func loadStateTensors(_ state: [(String, Tensor)]) throws
}

extension Optimizer {
  /// Every parameter across the groups, in state numbering order.
  public var parameters: [Tensor] { parameterGroups.flatMap(\.parameters) }

  /// Clears every parameter's gradient (drops it by default, as PyTorch's set_to_none).
  public func zeroGrad(setToNone: Bool = true) throws {
    for parameter in parameters { try parameter.zeroGrad(setToNone: setToNone) }
  }

  /// Calls `body` with each parameter that has a gradient, its group and its state index.
  func forEachParameterWithGradient(_ body: (_ index: Int, _ parameter: Tensor, _ grad: Tensor, _ group: ParameterGroup) throws -> Void) throws {
    var index = 0
    for group in parameterGroups {
      for parameter in group.parameters {
        defer { index += 1 }
        guard let grad = parameter.grad else { continue }
        try body(index, parameter, grad, group)
      }
    }
  }
}

/// Named per-parameter state of an optimizer, keyed by the parameter's state index.
struct ParameterStateTable {
  private(set) var tensors: [String: [Int: Tensor]] = [:]

  subscript(_ name: String, _ index: Int) -> Tensor? {
    get { tensors[name]?[index] }
    set { tensors[name, default: [:]][index] = newValue }
  }

  /// "param.<i>.<name>" entries sorted by index, then name.
  func exported() -> [(String, Tensor)] {
    tensors.flatMap { name, byIndex in byIndex.map { (index: $0.key, name: name, tensor: $0.value) } }
      .sorted { ($0.index, $0.name) < ($1.index, $1.name) }
      .map { ("param.\($0.index).\($0.name)", $0.tensor) }
  }

  /// Parses exported entries, copying each tensor to its parameter's dtype and device.
  static func imported(_ state: [(String, Tensor)], parameters: [Tensor], names: Set<String>) throws -> ParameterStateTable {
    var table = ParameterStateTable()
    for (key, tensor) in state {
      let parts = key.split(separator: ".", maxSplits: 2).map(String.init)
      guard parts.count == 3, parts[0] == "param", let index = Int(parts[1]), names.contains(parts[2]) else {
        throw NNError("unknown optimizer state entry '\(key)'")
      }
      guard parameters.indices.contains(index) else {
        throw NNError("optimizer state entry '\(key)' names parameter \(index), but there are \(parameters.count)")
      }
      let parameter = parameters[index]
      // Step counts stay float32 scalars on the CPU, as in torch; the rest take the parameter's place.
      let isCount = parts[2] == "step"
      guard isCount ? tensor.count == 1 : tensor.shape == parameter.shape else {
        throw NNError("optimizer state entry '\(key)' has shape \(tensor.shape), parameter \(index) has \(parameter.shape)")
      }
      let placed = isCount
        ? try tensor.reshape([]).to(dtype: .float32, device: .cpu)
        : try tensor.to(dtype: parameter.dtype, device: parameter.device)
      table[parts[2], index] = try Torch.withNoGrad { try placed.clone() }
    }
    return table
  }
}
