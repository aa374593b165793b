/// Stochastic gradient descent with momentum, as torch.optim.SGD (foreach=False):
///   g ← grad + wd·θ
///   b ← g on the first step, else momentum·b + (1 − dampening)·g
///   g ← g + momentum·b with Nesterov, else b
///   θ ← θ − lr·g
public final class SGD: Optimizer {
  public let parameterGroups: [ParameterGroup]
  public let momentum: Double
  public let dampening: Double
  public let nesterov: Bool
  /// Used by groups whose own `weightDecay` is nil.
  public let weightDecay: Double
  private var state = ParameterStateTable()

  public init(
    _ parameterGroups: [ParameterGroup], momentum: Double = 0, dampening: Double = 0, nesterov: Bool = false,
    weightDecay: Double = 0
  ) throws {
    guard momentum >= 0, weightDecay >= 0 else {
      throw NNError("SGD: momentum and weight decay must be non-negative")
    }
    guard !nesterov || (momentum > 0 && dampening == 0) else {
      throw NNError("SGD: Nesterov momentum requires a momentum and zero dampening")
    }
    self.parameterGroups = parameterGroups
    self.momentum = momentum
    self.dampening = dampening
    self.nesterov = nesterov
    self.weightDecay = weightDecay
  }

  public convenience init(
    parameters: [Tensor], momentum: Double = 0, dampening: Double = 0, nesterov: Bool = false, weightDecay: Double = 0
  ) throws {
    try self.init([ParameterGroup(parameters: parameters)], momentum: momentum, dampening: dampening,
                  nesterov: nesterov, weightDecay: weightDecay)
  }

  public func step(learningRate: Double) throws {
    try Torch.withNoGrad {
      try forEachParameterWithGradient { index, parameter, grad, group in
        var direction = grad
        let decay = group.weightDecay ?? weightDecay
        if decay != 0 {
          direction = try grad.clone()
          try direction.add_(parameter, alpha: decay)
        }
        if momentum != 0 {
          let buffer: Tensor
          if let existing = state["momentum_buffer", index] {
            buffer = existing
            try buffer.mul_(momentum)
            try buffer.add_(direction, alpha: 1 - dampening)
          } else {
            buffer = try direction.detach().clone()
            state["momentum_buffer", index] = buffer
          }
          if nesterov {
            let lookahead = try direction.clone()
            try lookahead.add_(buffer, alpha: momentum)
            direction = lookahead
          } else {
            direction = buffer
          }
        }
        try parameter.add_(direction, alpha: -learningRate * group.learningRateMultiplier)
      }
    }
  }

  public func stateTensors() throws -> [(String, Tensor)] { state.exported() }

  public func loadStateTensors(_ state: [(String, Tensor)]) throws {
    self.state = try ParameterStateTable.imported(state, parameters: parameters, names: ["momentum_buffer"])
  }
}
