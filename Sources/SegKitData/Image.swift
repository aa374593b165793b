import Foundation
import SegKitTensor

/// A failure reading or writing data, naming the file (or what was being done) and the problem.
public struct DataError: Error, CustomStringConvertible, Equatable, Sendable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// An 8-bit image, row-major, channels interleaved (H × W × C): C = 1 gray or label indices, 3 RGB, 4 RGBA.
public struct Image: Equatable, Sendable {
  public var width: Int
  public var height: Int
  public var channels: Int
  public var pixels: [UInt8]

  /// Checks that `pixels` holds exactly width × height × channels values.
  public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) throws {
    guard width >= 0, height >= 0, [1, 3, 4].contains(channels) else {
      throw DataError("invalid image geometry \(width)x\(height) with \(channels) channels (expected 1, 3 or 4)")
    }
    guard pixels.count == width * height * channels else {
      throw DataError("\(pixels.count) pixel values do not fill a \(width)x\(height) image with \(channels) channels")
    }
    self.width = width
    self.height = height
    self.channels = channels
    self.pixels = pixels
  }

  public init(width: Int, height: Int, channels: Int, filling value: UInt8 = 0) {
    precondition(width >= 0 && height >= 0 && [1, 3, 4].contains(channels), "invalid image geometry")
    self.width = width
    self.height = height
    self.channels = channels
    self.pixels = [UInt8](repeating: value, count: width * height * channels)
  }

  /// The value of channel `c` at column `x`, row `y`: `image[x, y, c]`.
  public subscript(x: Int, y: Int, c: Int) -> UInt8 {
    get { pixels[(y * width + x) * channels + c] }
    set { pixels[(y * width + x) * channels + c] = newValue }
  }

  /// The same with labels, `image[x: x, y: y, c: c]`, for readers who prefer them.
  public subscript(x x: Int, y y: Int, c c: Int) -> UInt8 {
    get { self[x, y, c] }
    set { self[x, y, c] = newValue }
  }
}

extension Image {
  /// [C, H, W] float32 in [0, 1].
  public func tensor() throws -> Tensor {
    let plane = width * height
    var values = [Float](repeating: 0, count: plane * channels)
    pixels.withUnsafeBufferPointer { src in
      values.withUnsafeMutableBufferPointer { dst in
        for i in 0..<plane {
          for c in 0..<channels { dst[c * plane + i] = Float(src[i * channels + c]) / 255 }
        }
      }
    }
    return try Tensor(values, shape: [channels, height, width])
  }

  /// [H, W] int64 class indices from a 1-channel label map.
  public func labelTensor() throws -> Tensor {
    guard channels == 1 else { throw DataError("a label tensor needs a 1-channel image, not \(channels) channels") }
    return try Tensor(pixels.map { Int64($0) }, shape: [height, width])
  }

  /// From a [C, H, W] floating tensor in [0, 1] (C = 1, 3 or 4; values rounded and clamped),
  /// or an [H, W] integer tensor of labels in 0...255.
  public init(tensor: Tensor) throws {
    let shape = tensor.shape
    if tensor.dtype.isFloatingPoint {
      guard shape.count == 3, [1, 3, 4].contains(shape[0]) else {
        throw DataError("an image tensor must be [C, H, W] with C = 1, 3 or 4, got \(shape)")
      }
      let (c, h, w) = (shape[0], shape[1], shape[2])
      let values = try tensor.contiguous().toArray(Float.self)
      var pixels = [UInt8](repeating: 0, count: c * h * w)
      let plane = h * w
      for ch in 0..<c {
        for i in 0..<plane {
          let v = values[ch * plane + i] * 255
          pixels[i * c + ch] = v.isNaN ? 0 : UInt8(max(0, min(255, v.rounded())))
        }
      }
      try self.init(width: w, height: h, channels: c, pixels: pixels)
    } else {
      guard shape.count == 2, tensor.dtype != .bool else {
        throw DataError("a label tensor must be [H, W] integers, got \(shape) \(tensor.dtype)")
      }
      let values = try tensor.contiguous().toArray(Int64.self)
      if let bad = values.first(where: { $0 < 0 || $0 > 255 }) {
        throw DataError("label value \(bad) does not fit an 8-bit label map")
      }
      try self.init(width: shape[1], height: shape[0], channels: 1, pixels: values.map { UInt8($0) })
    }
  }
}

extension Image {
  /// The largest images (and video frames) decoded: 32,768 pixels a side, 2^28 pixels
  /// (805 MB as RGB) in all. Larger ones are refused from their headers, before decoding.
  public static let maximumSide = 32_768
  public static let maximumPixels = 1 << 28
}
