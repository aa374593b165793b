/// A set of parameters that an optimizer treats alike: one learning-rate multiplier
/// and one weight decay (nil means the optimizer's default).
public struct ParameterGroup {
  public var parameters: [Tensor]
  public var learningRateMultiplier: Double
  public var weightDecay: Double?

  public init(parameters: [Tensor], learningRateMultiplier: Double = 1, weightDecay: Double? = nil) {
    self.parameters = parameters
    self.learningRateMultiplier = learningRateMultiplier
    self.weightDecay = weightDecay
  }
}

extension Module {
  /// Splits the trainable parameters into optimizer groups, in parameter order.
  ///
  /// Parameters whose dotted name satisfies `lastLayer` (e.g. `{ $0.hasPrefix("classifier.4") }`)
  /// get `lastLayerMultiplier` as learning-rate multiplier, the rest 1. With
  /// `noDecayOnBiasAndNorm`, biases and the parameters of normalisation layers get a
  /// weight decay of 0 instead of the optimizer's default. Empty groups are left out.
  public func parameterGroups(
    lastLayer: (String) -> Bool = { _ in false }, lastLayerMultiplier: Double = 10, noDecayOnBiasAndNorm: Bool = false
  ) -> [ParameterGroup] {
    let normParameters = Set(
      modules().filter { $0 is BatchNorm2d || $0 is GroupNorm }.flatMap { $0.parameters() }.map(ObjectIdentifier.init))
    var groups = [
      ParameterGroup(parameters: [], learningRateMultiplier: 1),
      ParameterGroup(parameters: [], learningRateMultiplier: 1, weightDecay: 0),
      ParameterGroup(parameters: [], learningRateMultiplier: lastLayerMultiplier),
      ParameterGroup(parameters: [], learningRateMultiplier: lastLayerMultiplier, weightDecay: 0),
    ]
    for (name, tensor) in namedParameters() where tensor.requiresGrad {
      let isBiasOrNorm = name.split(separator: ".").last == "bias" || normParameters.contains(ObjectIdentifier(tensor))
      let index = (lastLayer(name) ? 2 : 0) + (noDecayOnBiasAndNorm && isBiasOrNorm ? 1 : 0)
      groups[index].parameters.append(tensor)
    }
    return groups.filter { !$0.parameters.isEmpty }
  }
}
