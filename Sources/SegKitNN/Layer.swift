/// A module with one input and one output, the kind a `Sequential` chains.
public protocol Layer: Module {
  func forward(_ x: Tensor) throws -> Tensor
}

extension Layer {
  public func callAsFunction(_ x: Tensor) throws -> Tensor { try forward(x) }
}
