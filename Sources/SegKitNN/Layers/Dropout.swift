/// Zeroes elements with probability `p` while training and scales the rest by 1/(1−p).
public final class Dropout: Module, Layer {
  public let p: Double

  public init(p: Double = 0.5) {
    precondition((0...1).contains(p), "dropout probability has to be between 0 and 1, but got \(p)")
    self.p = p
  }

  public func forward(_ x: Tensor) throws -> Tensor { try x.dropout(p: p, training: isTraining) }
}

/// Zeroes whole channels with probability `p` while training, as nn.Dropout2d.
public final class Dropout2d: Module, Layer {
  public let p: Double

  public init(p: Double = 0.5) {
    precondition((0...1).contains(p), "dropout probability has to be between 0 and 1, but got \(p)")
    self.p = p
  }

  public func forward(_ x: Tensor) throws -> Tensor { try x.dropout2d(p: p, training: isTraining) }
}
