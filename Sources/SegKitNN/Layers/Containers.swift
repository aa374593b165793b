/// Layers applied one after another, registered as children "0", "1", … as nn.Sequential.
public final class Sequential: Module, Layer {
  public let layers: [any Layer]

  public init(_ layers: [any Layer]) {
    self.layers = layers
    super.init()
    for (index, layer) in layers.enumerated() { registerModule(String(index), layer) }
  }

  public convenience init(_ layers: any Layer...) { self.init(layers) }

  public subscript(_ index: Int) -> any Layer { layers[index] }

  public var count: Int { layers.count }

  public func forward(_ x: Tensor) throws -> Tensor {
    try layers.reduce(x) { try $1.forward($0) }
  }
}

/// Passes its input through unchanged, as nn.Identity (a placeholder keeping indices stable).
public final class Identity: Module, Layer {
  public override init() {}
  public func forward(_ x: Tensor) throws -> Tensor { x }
}
