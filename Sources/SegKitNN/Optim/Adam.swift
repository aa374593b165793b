import Foundation

/// Adam, as torch.optim.Adam with foreach=False and capturable=False. Per parameter,
/// at step t (counted from 1):
///   g ← grad + wd·θ                      (Adam; AdamW instead decays θ ← θ·(1 − lr·wd))
///   m ← m + (1 − β1)·(g − m)             v ← β2·v + (1 − β2)·g²
///   v̂ ← max(v̂, v) with AMSGrad, else v
///   θ ← θ − lr / (1 − β1^t) · m / (√v̂ / √(1 − β2^t) + ε)
/// The bias corrections are computed in double precision from the step count.
public class Adam: Optimizer {
  public let parameterGroups: [ParameterGroup]
  public let beta1: Double
  public let beta2: Double
  public let eps: Double
  /// Used by groups whose own `weightDecay` is nil.
  public let weightDecay: Double
  public let amsgrad: Bool
  /// AdamW's decoupled decay (θ shrinks directly) instead of L2 added to the gradient.
  public let decoupledWeightDecay: Bool
  private var state = ParameterStateTable()

  public init(
    _ parameterGroups: [ParameterGroup], beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8,
    weightDecay: Double = 0, amsgrad: Bool = false, decoupledWeightDecay: Bool = false
  ) throws {
    guard (0..<1).contains(beta1), (0..<1).contains(beta2) else {
      throw NNError("Adam: betas must be in [0, 1), got (\(beta1), \(beta2))")
    }
    guard eps >= 0, weightDecay >= 0 else { throw NNError("Adam: eps and weight decay must be non-negative") }
    self.parameterGroups = parameterGroups
    self.beta1 = beta1
    self.beta2 = beta2
    self.eps = eps
    self.weightDecay = weightDecay
    self.amsgrad = amsgrad
    self.decoupledWeightDecay = decoupledWeightDecay
  }

  public convenience init(
    parameters: [Tensor], beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0,
    amsgrad: Bool = false
  ) throws {
    try self.init([ParameterGroup(parameters: parameters)], beta1: beta1, beta2: beta2, eps: eps,
                  weightDecay: weightDecay, amsgrad: amsgrad)
  }

  public func step(learningRate: Double) throws {
    try Torch.withNoGrad {
      try forEachParameterWithGradient { index, parameter, grad, group in
        let lr = learningRate * group.learningRateMultiplier
        let (stepCount, expAvg, expAvgSq) = try moments(index, like: parameter)
        let step = try stepCount.item() + 1
        try stepCount.fill_(step)

        var direction = grad
        let decay = group.weightDecay ?? weightDecay
        if decay != 0 {
          if decoupledWeightDecay {
            try parameter.mul_(1 - lr * decay)
          } else {
            direction = try grad.clone()
            try direction.add_(parameter, alpha: decay)
          }
        }
        try expAvg.lerp_(direction, weight: 1 - beta1)
        try expAvgSq.mul_(beta2)
        try expAvgSq.addcmul_(direction, direction, value: 1 - beta2)

        let biasCorrection1 = 1 - Foundation.pow(beta1, step)
        let biasCorrection2Sqrt = Foundation.pow(1 - Foundation.pow(beta2, step), 0.5)
        var secondMoment = expAvgSq
        if amsgrad {
          let maxExpAvgSq = try state["max_exp_avg_sq", index] ?? Tensor.zeros(parameter.shape, dtype: parameter.dtype, device: parameter.device)
          try maxExpAvgSq.copy_(maxExpAvgSq.maximum(expAvgSq))
          state["max_exp_avg_sq", index] = maxExpAvgSq
          secondMoment = maxExpAvgSq
        }
        let denominator = try secondMoment.sqrt() / biasCorrection2Sqrt
        try denominator.add_(eps)
        try parameter.addcdiv_(expAvg, denominator, value: -(lr / biasCorrection1))
      }
    }
  }

  /// The step count and moment estimates of parameter `index`, created (zero) on first use.
  private func moments(_ index: Int, like parameter: Tensor) throws -> (step: Tensor, expAvg: Tensor, expAvgSq: Tensor) {
    if let step = state["step", index], let expAvg = state["exp_avg", index], let expAvgSq = state["exp_avg_sq", index] {
      return (step, expAvg, expAvgSq)
    }
    let step = try Tensor(scalar: 0, dtype: .float32)
    let expAvg = try Tensor.zeros(parameter.shape, dtype: parameter.dtype, device: parameter.device)
    let expAvgSq = try Tensor.zeros(parameter.shape, dtype: parameter.dtype, device: parameter.device)
    state["step", index] = step
    state["exp_avg", index] = expAvg
    state["exp_avg_sq", index] = expAvgSq
    return (step, expAvg, expAvgSq)
  }

  public func stateTensors() throws -> [(String, Tensor)] { state.exported() }

  public func loadStateTensors(_ state: [(String, Tensor)]) throws {
    self.state = try ParameterStateTable.imported(
      state, parameters: parameters, names: ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"])
  }
}

/// Adam with decoupled weight decay (Loshchilov and Hutter), as torch.optim.AdamW:
/// the parameters shrink by lr·wd each step instead of the decay entering the moments.
public final class AdamW: Adam {
  public init(
    _ parameterGroups: [ParameterGroup], beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8,
    weightDecay: Double = 0.01, amsgrad: Bool = false
  ) throws {
    try super.init(parameterGroups, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay,
                   amsgrad: amsgrad, decoupledWeightDecay: true)
  }

  public convenience init(
    parameters: [Tensor], beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8, weightDecay: Double = 0.01,
    amsgrad: Bool = false
  ) throws {
    try self.init([ParameterGroup(parameters: parameters)], beta1: beta1, beta2: beta2, eps: eps,
                  weightDecay: weightDecay, amsgrad: amsgrad)
  }
}
