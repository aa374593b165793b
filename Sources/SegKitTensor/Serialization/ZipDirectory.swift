import Foundation

/// The checks a zip archive (a `torch.save` checkpoint) passes before ZIPFoundation
/// reads it: the end record lies in the file's last 65,557 bytes (its 22 bytes and
/// the longest comment; a truncated download is refused without scanning the whole
/// file), and every size and offset of the ZIP64 records and of the central directory's
/// entries lies inside the file (ZIPFoundation traps on offsets of 2^63 and more).
enum ZipDirectory {
  static let endRecordSize = 22
  static let endRecordSearch = 22 + 65_535

  static func validate(_ url: URL) throws {
    let file: FileHandle
    do { file = try FileHandle(forReadingFrom: url) } catch {
      throw FormatProblem("cannot open the file (\(error.localizedDescription))")
    }
    defer { try? file.close() }
    let size = try file.seekToEnd()
    func read(_ count: Int, at offset: UInt64) throws -> [UInt8] {
      guard offset <= size, UInt64(count) <= size - offset else {
        throw FormatProblem("the zip directory points past the end of the file (\(count) bytes at \(offset) of \(size))")
      }
      try file.seek(toOffset: offset)
      let bytes = [UInt8](try file.read(upToCount: count) ?? Data())
      guard bytes.count == count else { throw FormatProblem("the file changed size while it was read") }
      return bytes
    }

    let tailLength = Int(min(size, UInt64(endRecordSearch)))
    let tailStart = size - UInt64(tailLength)
    let tail = try read(tailLength, at: tailStart)
    guard let endRecord = stride(from: tail.count - endRecordSize, through: 0, by: -1).first(where: {
      tail.signature(at: $0) == 0x0605_4B50
    }) else {
      throw FormatProblem("not a complete zip archive: no end record in its last \(endRecordSearch) bytes (a truncated download?)")
    }
    var entryCount = UInt64(tail.uint16(at: endRecord + 10))
    var directorySize = UInt64(tail.uint32(at: endRecord + 12))
    var directoryOffset = UInt64(tail.uint32(at: endRecord + 16))

    // ZIP64 (torch always writes it): a locator just before the end record, the ZIP64 end
    // record just before the locator. ZIPFoundation takes the directory from the ZIP64
    // record whenever the locator is there, so that is what is checked then.
    let locatorStart = endRecord - 20
    if locatorStart >= 0, tail.signature(at: locatorStart) == 0x0706_4B50 {
      let locatorOffset = tailStart + UInt64(locatorStart)
      guard locatorOffset >= 56, tail.uint64(at: locatorStart + 8) == locatorOffset - 56 else {
        throw FormatProblem("the ZIP64 end record is not just before its locator")
      }
      let record = try read(56, at: locatorOffset - 56)
      guard record.signature(at: 0) == 0x0606_4B50 else { throw FormatProblem("the ZIP64 end record is damaged") }
      (entryCount, directorySize, directoryOffset) = (record.uint64(at: 32), record.uint64(at: 40), record.uint64(at: 48))
    } else if entryCount == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
      throw FormatProblem("a ZIP64 archive without its end-record locator")
    }
    guard directoryOffset <= size, directorySize <= size - directoryOffset else {
      throw FormatProblem("the zip central directory (\(directorySize) bytes at \(directoryOffset)) lies outside the \(size)-byte file")
    }
    guard entryCount <= directorySize / 46 else {
      throw FormatProblem("the zip archive claims \(entryCount) entries, more than its central directory holds")
    }

    let directory = try read(Int(directorySize), at: directoryOffset)
    var position = 0
    for number in 0..<Int(entryCount) {
      guard position + 46 <= directory.count, directory.signature(at: position) == 0x0201_4B50 else {
        throw FormatProblem("zip central directory entry \(number) is damaged")
      }
      var compressed = UInt64(directory.uint32(at: position + 20))
      var uncompressed = UInt64(directory.uint32(at: position + 24))
      let nameLength = Int(directory.uint16(at: position + 28))
      let extraLength = Int(directory.uint16(at: position + 30))
      let commentLength = Int(directory.uint16(at: position + 32))
      var localOffset = UInt64(directory.uint32(at: position + 42))
      let extraStart = position + 46 + nameLength
      let next = extraStart + extraLength + commentLength
      guard next <= directory.count else { throw FormatProblem("zip central directory entry \(number) runs past the directory") }
      // The ZIP64 extra field (id 1) holds, in this order, each of these that is 0xFFFFFFFF above.
      var field = extraStart
      while field + 4 <= extraStart + extraLength {
        let (id, length) = (directory.uint16(at: field), Int(directory.uint16(at: field + 2)))
        guard field + 4 + length <= extraStart + extraLength else { break }
        if id == 1 {
          var value = field + 4
          func next64() throws -> UInt64 {
            guard value + 8 <= field + 4 + length else { throw FormatProblem("zip entry \(number)'s ZIP64 field is too short") }
            defer { value += 8 }
            return directory.uint64(at: value)
          }
          if uncompressed == 0xFFFF_FFFF { uncompressed = try next64() }
          if compressed == 0xFFFF_FFFF { compressed = try next64() }
          if localOffset == 0xFFFF_FFFF { localOffset = try next64() }
        }
        field += 4 + length
      }
      guard localOffset < size, compressed <= size - localOffset, uncompressed < 1 << 62 else {
        throw FormatProblem("zip entry \(number) claims \(compressed) bytes at offset \(localOffset) (uncompressed \(uncompressed)) in a \(size)-byte file")
      }
      position = next
    }
  }
}

extension Array where Element == UInt8 {
  fileprivate func uint16(at index: Int) -> UInt16 { UInt16(self[index]) | UInt16(self[index + 1]) << 8 }
  fileprivate func uint32(at index: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(self[index + $1]) << (8 * $1) } }
  fileprivate func uint64(at index: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(self[index + $1]) << (8 * $1) } }
  fileprivate func signature(at index: Int) -> UInt32 { index >= 0 && index + 4 <= count ? uint32(at: index) : 0 }
}
