import CImageCodecs
import Foundation

/// One variable (or struct field, or cell) of a MATLAB v5 file.
///
/// Only what segmentation annotations use is decoded: numeric and logical
/// arrays, char arrays, structs and cells. Sparse arrays and objects are kept
/// as `.unsupported` so that a file holding them (SBD's `Boundaries`) still reads.
public indirect enum MATValue: Sendable {
  /// Dimensions and values in MATLAB's column-major order, converted to Double.
  case numeric(class: MATClass, dimensions: [Int], values: [Double])
  case text(String)
  /// One dictionary of fields per struct element, in column-major order.
  case structure(dimensions: [Int], elements: [[String: MATValue]])
  case cell(dimensions: [Int], values: [MATValue])
  case unsupported(class: Int)

  public subscript(field: String) -> MATValue? {
    if case .structure(_, let elements) = self, elements.count == 1 { return elements[0][field] }
    return nil
  }
}

/// MATLAB array classes (mxCLASS_ID).
public enum MATClass: Int, Sendable {
  case double = 6, single = 7, int8 = 8, uint8 = 9, int16 = 10, uint16 = 11
  case int32 = 12, uint32 = 13, int64 = 14, uint64 = 15
}

/// A minimal reader of Level 5 MAT-files (MATLAB v5 up to v7; v7.3 is HDF5 and not read).
///
/// Everything a file states is checked before use: dimensions are whole, non-negative
/// numbers whose product stays under `maximumElements`; a compressed element inflates
/// to at most `maximumInflatedBytes`; structs and cells nest at most `maximumDepth`
/// deep; field names are at most 4,096 bytes long.
public enum MATFile {
  /// The most bytes one compressed element may inflate to (SBD's are under a megabyte).
  nonisolated(unsafe) public static var maximumInflatedBytes = 1 << 28
  /// The most values one array may hold (an 8,192 × 8,192 label map).
  nonisolated(unsafe) public static var maximumElements = 1 << 26
  /// The most elements of one struct or cell array.
  static let maximumContainerElements = 1 << 20
  /// How deep structs and cells may nest.
  public static let maximumDepth = 64

  /// Every variable of the file by name.
  public static func read(_ url: URL) throws -> [String: MATValue] {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw DataError("\(url.path): cannot read the file (\(error.localizedDescription))")
    }
    do { return try read(data) } catch let error as DataError {
      throw DataError("\(url.path): \(error.message)")
    }
  }

  public static func read(_ data: Data) throws -> [String: MATValue] {
    let bytes = [UInt8](data)
    guard bytes.count >= 128 else { throw DataError("not a MATLAB v5 file: shorter than its 128-byte header") }
    if bytes.starts(with: Array("MATLAB 7.3".utf8)) {
      throw DataError("MATLAB v7.3 (HDF5) files are not supported; save with -v7 or scipy.io.savemat")
    }
    // The version word 0x0100 then "IM" when written little-endian, "MI" big-endian.
    let bigEndian: Bool
    switch (bytes[126], bytes[127]) {
    case (UInt8(ascii: "I"), UInt8(ascii: "M")): bigEndian = false
    case (UInt8(ascii: "M"), UInt8(ascii: "I")): bigEndian = true
    default: throw DataError("not a MATLAB v5 file: no endian indicator at bytes 126-127")
    }
    var reader = ElementReader(bytes: bytes[...], bigEndian: bigEndian)
    reader.offset = 128
    var variables: [String: MATValue] = [:]
    while reader.remaining >= 8 {
      guard let (name, value) = try reader.topLevelVariable() else { continue }
      variables[name] = value
    }
    return variables
  }

  /// The 8-bit label map in `variable.field` (SBD: `GTcls.Segmentation`), transposed
  /// from MATLAB's column-major order into a 1-channel `Image`.
  public static func labelMap(_ url: URL, variable: String = "GTcls", field: String = "Segmentation") throws -> Image {
    let variables = try read(url)
    guard let container = variables[variable] else {
      throw DataError("\(url.path): no variable '\(variable)' (found: \(variables.keys.sorted().joined(separator: ", ")))")
    }
    guard let value = container[field] else {
      throw DataError("\(url.path): '\(variable)' is not a struct with a field '\(field)'")
    }
    guard case .numeric(_, let dims, let values) = value, dims.count == 2 else {
      throw DataError("\(url.path): '\(variable).\(field)' is not a 2-D numeric matrix")
    }
    let (height, width) = (dims[0], dims[1])  // their product is the values' count, checked on reading
    var pixels = [UInt8](repeating: 0, count: height * width)
    for x in 0..<width {
      for y in 0..<height {
        let v = values[x * height + y]
        guard v >= 0, v <= 255, v == v.rounded() else {
          throw DataError("\(url.path): '\(variable).\(field)' holds \(v) at (\(x), \(y)), not an 8-bit label")
        }
        pixels[y * width + x] = UInt8(v)
      }
    }
    return try Image(width: width, height: height, channels: 1, pixels: pixels)
  }
}

// MARK: - Data elements

private enum MIType: UInt32 {
  case int8 = 1, uint8 = 2, int16 = 3, uint16 = 4, int32 = 5, uint32 = 6, single = 7, double = 9
  case int64 = 12, uint64 = 13, matrix = 14, compressed = 15, utf8 = 16, utf16 = 17, utf32 = 18

  var size: Int {
    switch self {
    case .int8, .uint8, .utf8: return 1
    case .int16, .uint16, .utf16: return 2
    case .int32, .uint32, .single, .utf32: return 4
    case .double, .int64, .uint64: return 8
    case .matrix, .compressed: return 1
    }
  }
}

private struct ElementReader {
  let bytes: ArraySlice<UInt8>
  let bigEndian: Bool
  var offset: Int

  init(bytes: ArraySlice<UInt8>, bigEndian: Bool) {
    self.bytes = bytes
    self.bigEndian = bigEndian
    self.offset = bytes.startIndex
  }

  var remaining: Int { bytes.endIndex - offset }

  func load(_ size: Int, at position: Int) -> UInt64 {
    var value: UInt64 = 0
    for i in 0..<size {
      let byte = UInt64(bytes[position + (bigEndian ? i : size - 1 - i)])
      value = value << 8 | byte
    }
    return value
  }

  /// A tag: its type and payload; small elements pack both into 8 bytes.
  mutating func element() throws -> (type: UInt32, payload: ArraySlice<UInt8>) {
    guard remaining >= 8 else { throw DataError("truncated: a data element tag is cut off at byte \(offset)") }
    let first = UInt32(load(4, at: offset))
    if first >> 16 != 0 {
      let count = Int(first >> 16)
      guard count <= 4 else { throw DataError("corrupt small data element at byte \(offset)") }
      let payload = bytes[(offset + 4)..<(offset + 4 + count)]
      offset += 8
      return (first & 0xFFFF, payload)
    }
    let count = Int(load(4, at: offset + 4))
    guard count <= remaining - 8 else {
      throw DataError("truncated: an element of \(count) bytes at byte \(offset) runs past the end of the file")
    }
    let payload = bytes[(offset + 8)..<(offset + 8 + count)]
    // Elements are padded to 8 bytes, except compressed ones.
    let padded = first == MIType.compressed.rawValue ? count : (count + 7) / 8 * 8
    offset += 8 + min(padded, remaining - 8)
    return (first, payload)
  }

  mutating func topLevelVariable() throws -> (String, MATValue)? {
    let (type, payload) = try element()
    switch MIType(rawValue: type) {
    case .compressed:
      let inflated = try inflate(payload)
      var inner = ElementReader(bytes: inflated[...], bigEndian: bigEndian)
      let (innerType, innerPayload) = try inner.element()
      guard innerType == MIType.matrix.rawValue else { return nil }
      return try inner.matrix(innerPayload, depth: 0)
    case .matrix:
      return try matrix(payload, depth: 0)
    default:
      return nil  // Anything else at top level (e.g. subsystem data) is not a variable.
    }
  }

  func inflate(_ payload: ArraySlice<UInt8>) throws -> [UInt8] {
    var out: UnsafeMutablePointer<UInt8>?
    var size = 0
    var message = [CChar](repeating: 0, count: 256)
    let status = payload.withUnsafeBufferPointer { input in
      zi_inflate(input.baseAddress, input.count, MATFile.maximumInflatedBytes, &out, &size, &message, message.count)
    }
    if status == ZI_ERR_LIMIT {
      throw DataError("a compressed element inflates to more than \(MATFile.maximumInflatedBytes) bytes (MATFile.maximumInflatedBytes)")
    }
    guard status == ZI_OK, let out else {
      let reason = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
      throw DataError("compressed element cannot be inflated: \(reason)")
    }
    defer { zi_free(out) }
    return Array(UnsafeBufferPointer(start: out, count: size))
  }

  /// An miMATRIX payload: flags, dimensions, name, then class-specific parts.
  func matrix(_ payload: ArraySlice<UInt8>, depth: Int) throws -> (String, MATValue) {
    guard depth <= MATFile.maximumDepth else {
      throw DataError("structs and cells nest more than \(MATFile.maximumDepth) deep")
    }
    if payload.isEmpty { return ("", .numeric(class: .double, dimensions: [0, 0], values: [])) }
    var sub = ElementReader(bytes: payload, bigEndian: bigEndian)
    let (_, flagBytes) = try sub.element()
    guard flagBytes.count >= 4 else { throw DataError("corrupt array flags") }
    let flags = UInt32(sub.load(4, at: flagBytes.startIndex))
    let classID = Int(flags & 0xFF)
    let dimensionElement = try sub.element()
    let dimensions = try sub.integers(dimensionElement)
    let (_, nameBytes) = try sub.element()
    let name = String(decoding: nameBytes, as: UTF8.self)
    var count = 1
    for dimension in dimensions {
      guard dimension >= 0 else { throw DataError("array '\(name)' has a negative dimension (\(dimensions))") }
      let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
      guard !overflow, product <= MATFile.maximumElements else {
        throw DataError("array '\(name)' of dimensions \(dimensions) holds more than \(MATFile.maximumElements) values (MATFile.maximumElements)")
      }
      count = product
    }
    switch classID {
    case 1...2 where count > MATFile.maximumContainerElements:
      throw DataError("the struct or cell array '\(name)' has \(count) elements, more than \(MATFile.maximumContainerElements)")
    case 1:  // cell
      var values: [MATValue] = []
      for _ in 0..<count { values.append(try sub.nestedMatrix(depth: depth + 1)) }
      return (name, .cell(dimensions: dimensions, values: values))
    case 2:  // struct
      let lengthElement = try sub.element()
      let nameLength = try sub.integers(lengthElement).first ?? 0
      guard (0...4096).contains(nameLength) else { throw DataError("struct '\(name)' has field names of \(nameLength) bytes") }
      let (_, namesBytes) = try sub.element()
      guard nameLength > 0 else { return (name, .structure(dimensions: dimensions, elements: Array(repeating: [:], count: count))) }
      let fieldNames = stride(from: namesBytes.startIndex, to: namesBytes.endIndex, by: nameLength).map { start in
        String(decoding: namesBytes[start..<min(start + nameLength, namesBytes.endIndex)].prefix { $0 != 0 }, as: UTF8.self)
      }
      var elements: [[String: MATValue]] = []
      for _ in 0..<count {
        var fields: [String: MATValue] = [:]
        for field in fieldNames { fields[field] = try sub.nestedMatrix(depth: depth + 1) }
        elements.append(fields)
      }
      return (name, .structure(dimensions: dimensions, elements: elements))
    case 4:  // char
      let codeElement = try sub.element()
      let codes = try sub.numbers(codeElement)
      return (name, .text(String(codes.map { code in UInt32(exactly: code).flatMap(UnicodeScalar.init).map(Character.init) ?? "?" })))
    default:
      guard let matClass = MATClass(rawValue: classID) else { return (name, .unsupported(class: classID)) }
      let valueElement = try sub.element()
      let values = try sub.numbers(valueElement)
      guard values.count == count else {
        throw DataError("array '\(name)' holds \(values.count) values for dimensions \(dimensions)")
      }
      // Logical arrays are uint8 with a flag (0x0200); the values are what matters.
      return (name, .numeric(class: matClass, dimensions: dimensions, values: values))
    }
  }

  mutating func nestedMatrix(depth: Int) throws -> MATValue {
    let (type, payload) = try element()
    guard type == MIType.matrix.rawValue else { throw DataError("expected a nested array, found element type \(type)") }
    return try matrix(payload, depth: depth).1
  }

  /// Whole numbers (dimensions, lengths): NaN, fractions and values past Int's range are errors.
  func integers(_ element: (type: UInt32, payload: ArraySlice<UInt8>)) throws -> [Int] {
    try numbers(element).map { value in
      guard let integer = Int(exactly: value) else { throw DataError("\(value) where a whole number (a size) belongs") }
      return integer
    }
  }

  /// The values of a numeric element, whatever its storage type.
  func numbers(_ element: (type: UInt32, payload: ArraySlice<UInt8>)) throws -> [Double] {
    guard let type = MIType(rawValue: element.type), type != .matrix, type != .compressed else {
      throw DataError("unsupported numeric element type \(element.type)")
    }
    let payload = element.payload
    let size = type.size
    let n = payload.count / size
    guard n <= MATFile.maximumElements else {
      throw DataError("an element of \(n) values, more than \(MATFile.maximumElements) (MATFile.maximumElements)")
    }
    var values = [Double](repeating: 0, count: n)
    if type == .uint8 || type == .utf8 { return payload.map(Double.init) }
    for i in 0..<n {
      let raw = load(size, at: payload.startIndex + i * size)
      switch type {
      case .int8: values[i] = Double(Int8(truncatingIfNeeded: raw))
      case .int16: values[i] = Double(Int16(truncatingIfNeeded: raw))
      case .int32: values[i] = Double(Int32(truncatingIfNeeded: raw))
      case .int64: values[i] = Double(Int64(bitPattern: raw))
      case .single: values[i] = Double(Float(bitPattern: UInt32(raw)))
      case .double: values[i] = Double(bitPattern: raw)
      default: values[i] = Double(raw)  // unsigned kinds and UTF-16/32 code units
      }
    }
    return values
  }
}
