/// y = x·Wᵀ + b, as nn.Linear: weight (out, in), optional bias (out).
public final class Linear: Module, Layer {
  public let inFeatures: Int
  public let outFeatures: Int

  public var weight: Tensor { parameter("weight")! }
  public var bias: Tensor? { parameter("bias") }

  public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) throws {
    self.inFeatures = inFeatures
    self.outFeatures = outFeatures
    super.init()
    let weight = try registerParameter("weight", Tensor.empty([outFeatures, inFeatures]))
    let bias = bias ? try registerParameter("bias", Tensor.empty([outFeatures])) : nil
    try resetAffine(weight: weight, bias: bias)
  }

  public func forward(_ x: Tensor) throws -> Tensor {
    ForwardTrace.note(self, x, try x.linear(weight: weight, bias: bias))
  }
}
