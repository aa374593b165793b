/// A cursor over bytes read from a file. Every read is bounds-checked and throws
/// on truncated input instead of trapping, since the bytes may be anything.
struct ByteReader {
  let bytes: UnsafeRawBufferPointer
  private(set) var offset: Int

  init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
    self.bytes = bytes
    self.offset = offset
  }

  var remaining: Int { bytes.count - offset }

  /// The next `count` bytes, without copying them.
  mutating func read(_ count: Int) throws -> UnsafeRawBufferPointer {
    guard count >= 0, count <= remaining else {
      throw FormatProblem("truncated data: \(count) bytes needed at byte \(offset), \(remaining) left")
    }
    defer { offset += count }
    return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count])
  }

  /// A length field as a byte count that fits what is left, so that a corrupt length
  /// is reported before anything is allocated for it.
  mutating func read<Length: FixedWidthInteger>(lengthPrefixed _: Length.Type) throws -> UnsafeRawBufferPointer {
    let length = try readLittleEndian(Length.self)
    guard let count = Int(exactly: length), count >= 0 else {
      throw FormatProblem("invalid length \(length) at byte \(offset)")
    }
    return try read(count)
  }

  mutating func readByte() throws -> UInt8 {
    try read(1)[0]
  }

  mutating func readLittleEndian<T: FixedWidthInteger>(_: T.Type) throws -> T {
    T(littleEndian: try readStoredBytes(T.self))
  }

  mutating func readBigEndian<T: FixedWidthInteger>(_: T.Type) throws -> T {
    T(bigEndian: try readStoredBytes(T.self))
  }

  /// The next bytes as they lie in the file, reinterpreted as a `T` in memory.
  private mutating func readStoredBytes<T: FixedWidthInteger>(_: T.Type) throws -> T {
    let raw = try read(MemoryLayout<T>.size)
    var value = T.zero
    withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: raw) }
    return value
  }

  /// The bytes up to the next newline, which is consumed but not returned.
  mutating func readLine() throws -> UnsafeRawBufferPointer {
    guard let end = bytes[offset...].firstIndex(of: UInt8(ascii: "\n")) else {
      throw FormatProblem("truncated data: no end of line after byte \(offset)")
    }
    defer { offset = end + 1 }
    return UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
  }
}
