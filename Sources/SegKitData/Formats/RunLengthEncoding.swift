import Foundation

/// COCO's run-length encoding of a binary mask, the form pycocotools' `mask.encode`
/// writes and SAM 2's demo and COCO's tools read: `size` is [height, width]; the pixels
/// are read column by column (Fortran order), the runs alternate starting with zeros
/// (so a mask whose first pixel is set starts with a run of length 0), and `counts` is
/// the runs as a string: each run past the second as the difference from the run two
/// before, in 5-bit groups with a continuation bit (0x20) and sign bit (0x10) on the last,
/// offset by 48 into printable ASCII.
public struct RunLengthEncoding: Codable, Equatable, Sendable {
  public var size: [Int]
  public var counts: String

  public init(size: [Int], counts: String) {
    self.size = size
    self.counts = counts
  }

  /// The pixels of `labels` equal to `value`.
  public init(labels: Image, value: UInt8) {
    var runs: [Int] = []
    var current: UInt8 = 0  // runs start with zeros
    var length = 0
    for x in 0..<labels.width {
      for y in 0..<labels.height {
        let bit: UInt8 = labels.pixels[y * labels.width + x] == value ? 1 : 0
        if bit != current {
          runs.append(length)
          (current, length) = (bit, 0)
        }
        length += 1
      }
    }
    runs.append(length)
    self.init(size: [labels.height, labels.width], counts: Self.string(runs))
  }

  /// The mask as a 1-channel image of 0 and `value`, refused past `maxPixels` before
  /// anything is allocated; the error names `field`.
  public func mask(value: UInt8 = 1, maxPixels: Int = Image.maximumPixels, field: String = "rle") throws -> Image {
    guard size.count == 2, size[0] > 0, size[1] > 0, size[0] <= Image.maximumSide, size[1] <= Image.maximumSide else {
      throw DataError("\(field).size must be [height, width] with sides from 1 to \(Image.maximumSide), got \(size)")
    }
    guard size[0] * size[1] <= maxPixels else {
      throw DataError("\(field).size \(size[0])×\(size[1]) is over the limit of \(maxPixels) pixels")
    }
    let (height, width) = (size[0], size[1])
    let runs = try Self.runs(counts, field: field)
    guard runs.reduce(0, +) == height * width else {
      throw DataError("\(field).counts covers \(runs.reduce(0, +)) pixels, the size \(height)×\(width) has \(height * width)")
    }
    var out = Image(width: width, height: height, channels: 1)
    var position = 0
    for (i, run) in runs.enumerated() {
      if i % 2 == 1 {
        for p in position..<(position + run) { out.pixels[(p % height) * width + p / height] = value }
      }
      position += run
    }
    return out
  }

  static func string(_ runs: [Int]) -> String {
    var bytes: [UInt8] = []
    for i in runs.indices {
      var x = runs[i]
      if i > 2 { x -= runs[i - 2] }
      var more = true
      while more {
        var c = x & 0x1f
        x >>= 5  // arithmetic: a negative difference keeps its sign
        more = (c & 0x10) != 0 ? x != -1 : x != 0
        if more { c |= 0x20 }
        bytes.append(UInt8(c + 48))
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  static func runs(_ counts: String, field: String) throws -> [Int] {
    var runs: [Int] = []
    let bytes = Array(counts.utf8)
    var p = 0
    while p < bytes.count {
      var (x, k, more) = (0, 0, true)
      while more {
        guard p < bytes.count, bytes[p] >= 48, bytes[p] < 48 + 64, k < 12 else {
          throw DataError("\(field).counts is not a COCO run-length string (at character \(p))")
        }
        let c = Int(bytes[p]) - 48
        x |= (c & 0x1f) << (5 * k)
        more = (c & 0x20) != 0
        p += 1
        k += 1
        if !more && (c & 0x10) != 0 { x |= -1 << (5 * k) }
      }
      if runs.count > 2 { x += runs[runs.count - 2] }
      guard x >= 0, x <= Image.maximumPixels else { throw DataError("\(field).counts holds a run of \(x) pixels") }
      runs.append(x)
    }
    return runs
  }
}
