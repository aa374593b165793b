import Foundation

/// Middlebury's `.flo`, the format flow fields are exchanged in: the float 202021.25
/// ("PIEH" in little-endian bytes), the width and the height as little-endian int32,
/// then per pixel, row by row, the horizontal and the vertical displacement as
/// little-endian float32. Values above 1e9 mean "unknown" in that format.
public enum FlowFile {
  static let tag: Float = 202021.25
  /// Larger fields (more than 2^28 pixels, 2 GB of values) are refused rather than read.
  public static let maximumPixels = 1 << 28

  public static func read(_ url: URL) throws -> FlowField {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw DataError("\(url.path): cannot be read (\(error.localizedDescription))")
    }
    CommandInputs.note(url)
    return try decode(data, name: url.path)
  }

  /// Parses the bytes of a `.flo` file; `name` names it in errors.
  public static func decode(_ data: Data, name: String) throws -> FlowField {
    let bytes = [UInt8](data)
    guard bytes.count >= 12 else { throw DataError("\(name): \(bytes.count) bytes, too short for a .flo header (12)") }
    func word(_ offset: Int) -> UInt32 {
      UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }
    guard Float(bitPattern: word(0)) == tag else {
      throw DataError("\(name): not a Middlebury .flo file (it does not begin with the tag PIEH)")
    }
    let (width, height) = (Int(Int32(bitPattern: word(4))), Int(Int32(bitPattern: word(8))))
    guard width > 0, height > 0 else { throw DataError("\(name): the header gives a \(width)×\(height) field") }
    let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
    guard !overflow, pixels <= maximumPixels else {
      throw DataError("\(name): a \(width)×\(height) field is over the limit of \(maximumPixels) pixels")
    }
    let expected = 12 + 8 * pixels
    guard bytes.count == expected else {
      throw DataError("\(name): \(bytes.count) bytes, but a \(width)×\(height) field takes \(expected) (truncated or not a .flo file)")
    }
    var values = [Float](repeating: 0, count: 2 * pixels)
    for i in 0..<pixels {
      values[i] = Float(bitPattern: word(12 + 8 * i))
      values[pixels + i] = Float(bitPattern: word(16 + 8 * i))
    }
    return try FlowField(width: width, height: height, values: values)
  }

  /// The `.flo` bytes of `flow`.
  public static func encode(_ flow: FlowField) throws -> Data {
    guard flow.width > 0, flow.height > 0, flow.width <= Int(Int32.max), flow.height <= Int(Int32.max) else {
      throw DataError("a \(flow.width)×\(flow.height) flow field cannot be written as .flo")
    }
    let pixels = flow.width * flow.height
    var bytes = [UInt8](repeating: 0, count: 12 + 8 * pixels)
    func put(_ value: UInt32, at offset: Int) {
      for k in 0..<4 { bytes[offset + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) }
    }
    put(tag.bitPattern, at: 0)
    put(UInt32(flow.width), at: 4)
    put(UInt32(flow.height), at: 8)
    for i in 0..<pixels {
      put(flow.values[i].bitPattern, at: 12 + 8 * i)
      put(flow.values[pixels + i].bitPattern, at: 16 + 8 * i)
    }
    return Data(bytes)
  }

  /// Writes `flow` to `url` whole (a temporary file renamed into place).
  public static func write(_ flow: FlowField, to url: URL) throws {
    let data = try encode(flow)
    do { try AtomicFile.write(data, to: url) } catch {
      throw DataError("\(url.path): cannot be written (\(error.localizedDescription))")
    }
  }
}
