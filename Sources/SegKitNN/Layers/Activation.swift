// Elementwise activations; they hold no state.

public final class ReLU: Module, Layer {
  public override init() {}
  public func forward(_ x: Tensor) throws -> Tensor { try x.relu() }
}

public final class ReLU6: Module, Layer {
  public override init() {}
  public func forward(_ x: Tensor) throws -> Tensor { try x.relu6() }
}

public final class LeakyReLU: Module, Layer {
  public let negativeSlope: Double
  public init(negativeSlope: Double = 0.01) { self.negativeSlope = negativeSlope }
  public func forward(_ x: Tensor) throws -> Tensor { try x.leakyReLU(slope: negativeSlope) }
}

public final class Hardswish: Module, Layer {
  public override init() {}
  public func forward(_ x: Tensor) throws -> Tensor { try x.hardswish() }
}

public final class Hardsigmoid: Module, Layer {
  public override init() {}
  public func forward(_ x: Tensor) throws -> Tensor { try x.hardsigmoid() }
}

public final class Sigmoid: Module, Layer {
  public override init() {}
  public func forward(_ x: Tensor) throws -> Tensor { try x.sigmoid() }
}
