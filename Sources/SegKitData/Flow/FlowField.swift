import SegKitTensor

/// A dense 2-D displacement field, planar: all x displacements, then all y displacements.
///
/// The convention, everywhere in SegKit: the flow F from frame A to frame B says where A's
/// content went, A(x) ≈ B(x + F(x)), in pixels, x (rightwards) first, then y (downwards).
public struct FlowField: Sendable, Equatable {
  public var width: Int
  public var height: Int
  public var values: [Float]

  public init(width: Int, height: Int, values: [Float]) throws {
    guard width >= 0, height >= 0, values.count == 2 * width * height else {
      throw DataError("\(values.count) flow values do not fill a 2×\(height)×\(width) field")
    }
    self.width = width
    self.height = height
    self.values = values
  }

  /// Reads a [2, H, W] tensor (any dtype, converted to float32).
  public init(tensor: Tensor) throws {
    let shape = tensor.shape
    guard shape.count == 3, shape[0] == 2 else {
      throw DataError("a flow field needs a [2, H, W] tensor, not \(shape)")
    }
    try self.init(width: shape[2], height: shape[1], values: try tensor.toArray(Float.self))
  }

  /// The field as a [2, H, W] float32 tensor.
  public func tensor() throws -> Tensor { try Tensor(values, shape: [2, height, width]) }
}
