import CImageCodecs
import Foundation

/// Reading and writing JPEG and PNG files through libpng and libjpeg-turbo (and
/// reading FlyingChairs' binary PPM frames).
public enum ImageIO {
  /// Decodes a JPEG, PNG or binary PPM/PGM (sniffed from content) to RGB (gray and
  /// palette expanded, alpha dropped).
  public static func read(_ url: URL) throws -> Image {
    let data = try load(url)
    if PortablePixmap.sniff(data) { return try PortablePixmap.decode(data, name: url.path).rgb() }
    return try decode(data, url: url, mode: IC_DECODE_RGB)
  }

  /// Decodes keeping the stored channels: gray 1, RGB 3, with alpha 4 (gray + alpha as RGBA);
  /// palette PNGs come out as RGB colours, 16-bit PNGs reduced to 8 bits.
  public static func readNative(_ url: URL) throws -> Image {
    try decode(url, mode: IC_DECODE_NATIVE)
  }

  /// Reads a label map: palette PNG → palette indices, 8-bit gray PNG → values; 1 channel. Other kinds → error naming the file.
  public static func readLabel(_ url: URL) throws -> Image {
    let data = try load(url)
    let format = data.withUnsafeBytes { ic_sniff($0.bindMemory(to: UInt8.self).baseAddress, $0.count) }
    guard format == IC_PNG else {
      throw DataError("\(url.path): a label map must be a palette or gray PNG, not \(format == IC_JPEG ? "a JPEG" : "this format")")
    }
    return try decode(data, url: url, mode: IC_DECODE_LABEL)
  }

  /// Width and height without decoding pixels (for data checks).
  public static func size(of url: URL) throws -> (width: Int, height: Int) {
    let data = try load(url)
    var (w, h): (Int32, Int32) = (0, 0)
    let status = data.withUnsafeBytes { ic_image_size($0.bindMemory(to: UInt8.self).baseAddress, $0.count, &w, &h) }
    try check(status, url)
    return (Int(w), Int(h))
  }

  /// Decodes JPEG or PNG bytes (a request's body, say) to RGB; `name` names them in errors.
  /// The header's size is checked against `Image`'s limits before any pixel is decoded.
  public static func decode(_ data: Data, name: String) throws -> Image {
    if PortablePixmap.sniff(data) { return try PortablePixmap.decode(data, name: name).rgb() }
    return try decode(data, name: name, mode: IC_DECODE_RGB)
  }

  /// A label map from PNG bytes: palette indices or gray values, 1 channel.
  public static func decodeLabel(_ data: Data, name: String) throws -> Image {
    let format = data.withUnsafeBytes { ic_sniff($0.bindMemory(to: UInt8.self).baseAddress, $0.count) }
    guard format == IC_PNG else {
      throw DataError("\(name): a label map must be a palette or gray PNG, not \(format == IC_JPEG ? "a JPEG" : "this format")")
    }
    return try decode(data, name: name, mode: IC_DECODE_LABEL)
  }

  /// Width and height from the header of JPEG or PNG bytes, without decoding pixels.
  public static func size(of data: Data, name: String) throws -> (width: Int, height: Int) {
    var (w, h): (Int32, Int32) = (0, 0)
    let status = data.withUnsafeBytes { ic_image_size($0.bindMemory(to: UInt8.self).baseAddress, $0.count, &w, &h) }
    try check(status, name)
    return (Int(w), Int(h))
  }

  /// Writes a PNG: gray, RGB or RGBA as stored; with `palette`, a 1-channel image of indices
  /// as a palette PNG holding the colormap's 256 colours. Atomic (temporary file and rename).
  public static func writePNG(_ image: Image, to url: URL, palette: Colormap? = nil, compression: Int = 6) throws {
    try save(try pngData(image, palette: palette, compression: compression, name: url.path), to: url)
  }

  /// The PNG bytes `writePNG` writes.
  public static func pngData(_ image: Image, palette: Colormap? = nil, compression: Int = 6, name: String = "PNG") throws -> Data {
    if palette != nil && image.channels != 1 {
      throw DataError("\(name): a palette PNG needs a 1-channel label map, not \(image.channels) channels")
    }
    let colors = palette?.paletteBytes
    var out: UnsafeMutablePointer<UInt8>?
    var size = 0
    let status = image.pixels.withUnsafeBufferPointer { pixels in
      withOptionalBuffer(colors) { colors in
        ic_png_encode(pixels.baseAddress, Int32(image.width), Int32(image.height), Int32(image.channels),
                      colors, colors == nil ? 0 : 256, Int32(max(0, min(9, compression))), &out, &size)
      }
    }
    try check(status, name)
    return take(out, size)
  }

  /// Writes a baseline JPEG (4:2:0). Gray stays gray; RGBA loses its alpha.
  public static func writeJPEG(_ image: Image, to url: URL, quality: Int = 95) throws {
    try save(try jpegData(image, quality: quality, name: url.path), to: url)
  }

  /// The JPEG bytes `writeJPEG` writes.
  public static func jpegData(_ image: Image, quality: Int = 95, name: String = "JPEG") throws -> Data {
    let source = image.channels == 4 ? image.droppingAlpha() : image
    var out: UnsafeMutablePointer<UInt8>?
    var size = 0
    let status = source.pixels.withUnsafeBufferPointer {
      ic_jpeg_encode($0.baseAddress, Int32(source.width), Int32(source.height), Int32(source.channels),
                     Int32(quality), &out, &size)
    }
    try check(status, name)
    return take(out, size)
  }

  // MARK: Internals

  private static func decode(_ url: URL, mode: ic_decode_mode) throws -> Image {
    try decode(try load(url), url: url, mode: mode)
  }

  private static func decode(_ data: Data, url: URL, mode: ic_decode_mode) throws -> Image {
    try decode(data, name: url.path, mode: mode)
  }

  private static func decode(_ data: Data, name: String, mode: ic_decode_mode) throws -> Image {
    var (w, h, c): (Int32, Int32, Int32) = (0, 0, 0)
    // The header's size first: a few hundred bytes may claim gigapixels.
    let sized = data.withUnsafeBytes { ic_image_size($0.bindMemory(to: UInt8.self).baseAddress, $0.count, &w, &h) }
    if sized == 0 {
      guard Int(w) <= Image.maximumSide, Int(h) <= Image.maximumSide, Int(w) * Int(h) <= Image.maximumPixels else {
        throw DataError("\(name): a \(w)×\(h) image is over the limit of \(Image.maximumSide) pixels a side and \(Image.maximumPixels) in all")
      }
    }
    var pixels: UnsafeMutablePointer<UInt8>?
    let status = data.withUnsafeBytes { raw -> ic_status in
      let bytes = raw.bindMemory(to: UInt8.self).baseAddress
      switch ic_sniff(bytes, raw.count) {
      case IC_PNG: return ic_png_decode(bytes, raw.count, mode, &w, &h, &c, &pixels)
      case IC_JPEG: return ic_jpeg_decode(bytes, raw.count, mode == IC_DECODE_NATIVE ? 1 : 0, &w, &h, &c, &pixels)
      default: return -1
      }
    }
    if status == -1 { throw DataError("\(name): not a PNG, JPEG or PPM file (unrecognised content)") }
    try check(status, name)
    defer { ic_free(pixels) }
    let count = Int(w) * Int(h) * Int(c)
    return try Image(width: Int(w), height: Int(h), channels: Int(c),
                     pixels: Array(UnsafeBufferPointer(start: pixels, count: count)))
  }

  private static func load(_ url: URL) throws -> Data {
    guard FileManager.default.fileExists(atPath: url.path) else { throw DataError("\(url.path): no such file") }
    do {
      // Read, not mapped: a file that shrinks while mapped kills the process with SIGBUS.
      let data = try Data(contentsOf: url)
      CommandInputs.note(url)
      return data
    } catch {
      throw DataError("\(url.path): cannot be read (\(error.localizedDescription))")
    }
  }

  private static func take(_ bytes: UnsafeMutablePointer<UInt8>?, _ size: Int) -> Data {
    defer { ic_free(bytes) }
    return Data(bytes: bytes!, count: size)
  }

  private static func save(_ data: Data, to url: URL) throws {
    do {
      try AtomicFile.write(data, to: url)
    } catch {
      throw DataError("\(url.path): cannot be written (\(error.localizedDescription))")
    }
  }

  private static func check(_ status: ic_status, _ url: URL) throws { try check(status, url.path) }

  private static func check(_ status: ic_status, _ name: String) throws {
    guard status != 0 else { return }
    throw DataError("\(name): \(String(cString: ic_last_error()))")
  }

  private static func withOptionalBuffer<R>(_ values: [UInt8]?, _ body: (UnsafePointer<UInt8>?) -> R) -> R {
    guard let values else { return body(nil) }
    return values.withUnsafeBufferPointer { body($0.baseAddress) }
  }
}

extension Image {
  /// The RGB channels of an RGBA image.
  func droppingAlpha() -> Image {
    var out = Image(width: width, height: height, channels: 3)
    for i in 0..<(width * height) {
      out.pixels[3 * i] = pixels[4 * i]
      out.pixels[3 * i + 1] = pixels[4 * i + 1]
      out.pixels[3 * i + 2] = pixels[4 * i + 2]
    }
    return out
  }
}
