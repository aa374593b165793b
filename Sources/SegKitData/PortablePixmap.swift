import Foundation

/// Netpbm's binary pixmaps and graymaps (P6 RGB, P5 gray) with 8-bit samples, the
/// format FlyingChairs ships its frames in: "P6", whitespace, width, height and the
/// largest sample value as decimal text (with `#` comments to the end of a line),
/// one whitespace byte, then the samples row by row.
public enum PortablePixmap {
  /// Whether `data` begins like a binary pixmap or graymap.
  public static func sniff(_ data: Data) -> Bool {
    data.count >= 2 && data[data.startIndex] == UInt8(ascii: "P") && [UInt8(ascii: "5"), UInt8(ascii: "6")].contains(data[data.startIndex + 1])
  }

  /// Decodes P6 to RGB and P5 to one channel; `name` names the file in errors.
  public static func decode(_ data: Data, name: String) throws -> Image {
    let bytes = [UInt8](data)
    guard sniff(data) else { throw DataError("\(name): not a binary PPM or PGM file (it does not begin with P6 or P5)") }
    let channels = bytes[1] == UInt8(ascii: "6") ? 3 : 1
    var offset = 2
    func skipSpaceAndComments() {
      while offset < bytes.count {
        if bytes[offset] == UInt8(ascii: "#") {
          while offset < bytes.count, bytes[offset] != 0x0A, bytes[offset] != 0x0D { offset += 1 }
        } else if [0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C].contains(bytes[offset]) {
          offset += 1
        } else {
          return
        }
      }
    }
    func number(_ what: String) throws -> Int {
      skipSpaceAndComments()
      var value = 0, digits = 0
      while offset < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset]) {
        // Seven digits are more than any allowed size or sample value.
        guard digits < 7 else { throw DataError("\(name): the header's \(what) has too many digits") }
        value = value * 10 + Int(bytes[offset] - UInt8(ascii: "0"))
        digits += 1
        offset += 1
      }
      guard digits > 0 else { throw DataError("\(name): the header has no \(what)") }
      return value
    }
    let width = try number("width"), height = try number("height"), maximum = try number("largest sample value")
    guard width > 0, height > 0, width <= Image.maximumSide, height <= Image.maximumSide, width * height <= Image.maximumPixels else {
      throw DataError("\(name): a \(width)×\(height) image is outside 1…\(Image.maximumSide) pixels a side or over \(Image.maximumPixels) in all")
    }
    guard (1...255).contains(maximum) else {
      throw DataError("\(name): largest sample value \(maximum); SegKit reads 8-bit PPM and PGM files (1…255)")
    }
    guard offset < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[offset]) else {
      throw DataError("\(name): the header does not end in a whitespace byte")
    }
    offset += 1
    let count = width * height * channels
    guard bytes.count - offset >= count else {
      throw DataError("\(name): \(bytes.count - offset) bytes of samples, but a \(width)×\(height) image takes \(count) (truncated?)")
    }
    var pixels = Array(bytes[offset..<(offset + count)])
    if maximum != 255 {
      for i in pixels.indices { pixels[i] = UInt8((Int(min(pixels[i], UInt8(maximum))) * 255 + maximum / 2) / maximum) }
    }
    return try Image(width: width, height: height, channels: channels, pixels: pixels)
  }

  /// The P6 (RGB) or P5 (one channel) bytes of `image`.
  public static func encode(_ image: Image) throws -> Data {
    guard image.channels == 3 || image.channels == 1 else {
      throw DataError("a PPM holds RGB or gray pixels, not \(image.channels) channels")
    }
    var data = Data("P\(image.channels == 3 ? 6 : 5)\n\(image.width) \(image.height)\n255\n".utf8)
    data.append(contentsOf: image.pixels)
    return data
  }

  /// Writes `image` to `url` whole (a temporary file renamed into place).
  public static func write(_ image: Image, to url: URL) throws {
    let data = try encode(image)
    do { try AtomicFile.write(data, to: url) } catch {
      throw DataError("\(url.path): cannot be written (\(error.localizedDescription))")
    }
  }
}
