/// Resampling to a fixed size or by a scale factor, as nn.Upsample.
public final class Upsample: Module, Layer {
  public enum Target: Equatable, Sendable {
    case size(Size2)
    case scaleFactor(Double)
  }

  public let target: Target
  public let mode: Interpolation
  /// Only meaningful for bilinear and bicubic modes.
  public let alignCorners: Bool

  public init(size: Size2, mode: Interpolation = .nearest, alignCorners: Bool = false) {
    self.target = .size(size)
    self.mode = mode
    self.alignCorners = alignCorners
  }

  public init(scaleFactor: Double, mode: Interpolation = .nearest, alignCorners: Bool = false) {
    self.target = .scaleFactor(scaleFactor)
    self.mode = mode
    self.alignCorners = alignCorners
  }

  public func forward(_ x: Tensor) throws -> Tensor {
    switch target {
    case .size(let size): return try x.interpolate(size: size, mode: mode, alignCorners: alignCorners)
    case .scaleFactor(let factor): return try x.interpolate(scaleFactor: factor, mode: mode, alignCorners: alignCorners)
    }
  }
}
