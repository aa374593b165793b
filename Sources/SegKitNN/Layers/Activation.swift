// Elementwise activations; they hold no state.

public final class ReLU: Module, Layer, FusableActivation {
  public override init() {}
  public var fusedIntoConvolution = false
  public var convolutionActivation: ConvolutionActivation { .relu }
  public func forward(_ x: Tensor) throws -> Tensor { fusedIntoConvolution && !isTraining ? x : try x.relu() }
}

public final class ReLU6: Module, Layer, FusableActivation {
  public override init() {}
  public var fusedIntoConvolution = false
  public var convolutionActivation: ConvolutionActivation { .relu6 }
  public func forward(_ x: Tensor) throws -> Tensor { fusedIntoConvolution && !isTraining ? x : try x.relu6() }
}

public final class LeakyReLU: Module, Layer, FusableActivation {
  public let negativeSlope: Double
  public init(negativeSlope: Double = 0.01) { self.negativeSlope = negativeSlope }
  public var fusedIntoConvolution = false
  public var convolutionActivation: ConvolutionActivation { .leakyReLU(slope: negativeSlope) }
  public func forward(_ x: Tensor) throws -> Tensor { fusedIntoConvolution && !isTraining ? x : try x.leakyReLU(slope: negativeSlope) }
}

public final class Hardswish: Module, Layer, FusableActivation {
  public override init() {}
  public var fusedIntoConvolution = false
  public var convolutionActivation: ConvolutionActivation { .hardswish }
  public func forward(_ x: Tensor) throws -> Tensor { fusedIntoConvolution && !isTraining ? x : try x.hardswish() }
}

public final class Hardsigmoid: Module, Layer {
  public override init() {}
  public func forward(_ x: Tensor) throws -> Tensor { try x.hardsigmoid() }
}

public final class Sigmoid: Module, Layer, FusableActivation {
  public override init() {}
  public var fusedIntoConvolution = false
  public var convolutionActivation: ConvolutionActivation { .sigmoid }
  public func forward(_ x: Tensor) throws -> Tensor { fusedIntoConvolution && !isTraining ? x : try x.sigmoid() }
}
