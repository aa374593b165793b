import Foundation

/// A learning rate as a pure function of the global step, so a resumed run continues
/// exactly where it stopped. Feed it to `Optimizer.step(learningRate:)`.
///
/// The rate at step s is, in order of precedence:
/// 1. DeepLab's slow start: `slowStartLearningRate` while s < `slowStartSteps`;
/// 2. linear warm-up: decay(s) · (f + (1 − f) · s / `warmupSteps`) while s < `warmupSteps`,
///    f = `warmupStartFactor` (torch's LinearLR chained with the decay);
/// 3. decay(s).
public struct LearningRateSchedule: Sendable {
  public enum Decay: Sendable {
    case constant(Double)
    /// DeepLab's "poly" (TF polynomial_decay): (base − end) · (1 − min(s, maxSteps) / maxSteps)^power + end.
    case poly(base: Double, maxSteps: Int, power: Double = 0.9, end: Double = 0)
    /// DeepLab's "step" (TF exponential_decay, staircase): base · factor^⌊s / every⌋.
    case step(base: Double, factor: Double, every: Int)
    /// TF piecewise_constant, as tfvos uses it: values[0] for s ≤ boundaries[0],
    /// values[i] for boundaries[i−1] < s ≤ boundaries[i], the last value after the last boundary.
    case piecewise(boundaries: [Int], values: [Double])
    /// minimum + (base − minimum) · (1 + cos(π · min(s, maxSteps) / maxSteps)) / 2.
    case cosine(base: Double, maxSteps: Int, minimum: Double = 0)
  }

  public var decay: Decay
  public var warmupSteps: Int
  public var warmupStartFactor: Double
  public var slowStartSteps: Int
  public var slowStartLearningRate: Double

  public init(
    _ decay: Decay, warmupSteps: Int = 0, warmupStartFactor: Double = 0, slowStartSteps: Int = 0,
    slowStartLearningRate: Double = 1e-4
  ) throws {
    switch decay {
    case .poly(_, let maxSteps, _, _), .cosine(_, let maxSteps, _):
      guard maxSteps > 0 else { throw NNError("learning rate: maxSteps must be positive, got \(maxSteps)") }
    case .step(_, _, let every):
      guard every > 0 else { throw NNError("learning rate: decay interval must be positive, got \(every)") }
    case .piecewise(let boundaries, let values):
      guard values.count == boundaries.count + 1 else {
        throw NNError("learning rate: \(boundaries.count) boundaries need \(boundaries.count + 1) values, got \(values.count)")
      }
      guard zip(boundaries, boundaries.dropFirst()).allSatisfy({ $0 < $1 }) else {
        throw NNError("learning rate: boundaries must increase, got \(boundaries)")
      }
    case .constant:
      break
    }
    guard warmupSteps >= 0, slowStartSteps >= 0 else { throw NNError("learning rate: step counts must be non-negative") }
    self.decay = decay
    self.warmupSteps = warmupSteps
    self.warmupStartFactor = warmupStartFactor
    self.slowStartSteps = slowStartSteps
    self.slowStartLearningRate = slowStartLearningRate
  }

  public func learningRate(atStep globalStep: Int) -> Double {
    let step = Swift.max(globalStep, 0)
    if step < slowStartSteps { return slowStartLearningRate }
    let decayed = decayedRate(step)
    guard step < warmupSteps else { return decayed }
    return decayed * (warmupStartFactor + (1 - warmupStartFactor) * Double(step) / Double(warmupSteps))
  }

  public func callAsFunction(_ globalStep: Int) -> Double { learningRate(atStep: globalStep) }

  private func decayedRate(_ step: Int) -> Double {
    switch decay {
    case .constant(let rate):
      return rate
    case .poly(let base, let maxSteps, let power, let end):
      let progress = Double(Swift.min(step, maxSteps)) / Double(maxSteps)
      return (base - end) * Foundation.pow(1 - progress, power) + end
    case .step(let base, let factor, let every):
      return base * Foundation.pow(factor, Double(step / every))
    case .piecewise(let boundaries, let values):
      return values[boundaries.firstIndex { step <= $0 } ?? boundaries.count]
    case .cosine(let base, let maxSteps, let minimum):
      let progress = Double(Swift.min(step, maxSteps)) / Double(maxSteps)
      return minimum + (base - minimum) * (1 + Foundation.cos(Double.pi * progress)) / 2
    }
  }
}
