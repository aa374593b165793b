import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The safetensors format: an 8-byte little-endian header length N, N bytes of
/// JSON (`{"name": {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}`),
/// then the raw little-endian tensor bytes, offsets counted from the end of the header.
public enum SafeTensors {
  /// The same bound the reference implementation puts on the header, so that a
  /// corrupt length cannot make us parse (or allocate) gigabytes of "JSON".
  static let maximumHeaderLength = 100_000_000
  static let metadataKey = "__metadata__"

  /// The tensors in file order and the file's string metadata.
  public static func read(contentsOf url: URL) throws -> (stateDict: StateDict, metadata: [String: String]) {
    try naming(url) {
      // Read, not mapped: a file that shrinks while mapped (a checkpoint still being written) kills the process with SIGBUS.
      let data = try Data(contentsOf: url)
      CommandInputs.note(url)
      return try data.withUnsafeBytes { try parse($0) }
    }
  }

  /// Writes the tensors in the order given, with `metadata` under "__metadata__".
  /// The file appears complete or not at all (written beside `url`, then renamed).
  public static func write(_ stateDict: StateDict, metadata: [String: String] = [:], to url: URL) throws {
    try naming(url) {
      var header = try headerJSON(stateDict, metadata: metadata)
      // Padding keeps the tensor data 8-byte aligned, as the reference writer does.
      header.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
      try AtomicFile.write(to: url) { file in
        var length = UInt64(header.count).littleEndian
        try file.write(contentsOf: Data(bytes: &length, count: 8))
        try file.write(contentsOf: header)
        for (_, tensor) in stateDict {
          try file.write(contentsOf: tensor.data())
        }
      }
    }
  }

  // MARK: Reading

  private struct TensorEntry {
    let name: String
    let dtype: DType
    let shape: [Int]
    let begin: Int
    let end: Int
  }

  static func parse(_ bytes: UnsafeRawBufferPointer) throws -> (stateDict: StateDict, metadata: [String: String]) {
    var reader = ByteReader(bytes)
    guard bytes.count >= 8 else {
      throw FormatProblem("safetensors: the file is \(bytes.count) bytes long, too short for the 8-byte header length")
    }
    let headerLength = try reader.readLittleEndian(UInt64.self)
    guard headerLength <= UInt64(reader.remaining) else {
      throw FormatProblem("safetensors: header length \(headerLength) goes beyond the end of the file (\(bytes.count) bytes)")
    }
    guard headerLength <= UInt64(maximumHeaderLength) else {
      throw FormatProblem("safetensors: header length \(headerLength) exceeds the \(maximumHeaderLength)-byte limit")
    }
    let header = try reader.read(Int(headerLength))
    let (unorderedEntries, metadata) = try parseHeader(header)
    let data = try reader.read(reader.remaining)

    // File order is data order. Empty tensors sharing an offset keep no order of
    // their own in a JSON object, so names break such ties.
    let entries = unorderedEntries.sorted { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
    // The data section must be covered exactly, without holes or overlaps, as the
    // format requires (this also rules out polyglot files).
    var expectedBegin = 0
    for entry in entries {
      let what = "safetensors: tensor '\(entry.name)' with data_offsets [\(entry.begin), \(entry.end)]"
      guard entry.begin >= 0, entry.begin <= entry.end, entry.end <= data.count else {
        throw FormatProblem("\(what) lies outside the \(data.count)-byte data section")
      }
      guard entry.begin >= expectedBegin else {
        throw FormatProblem("\(what) overlaps the previous tensor, which ends at \(expectedBegin)")
      }
      guard entry.begin == expectedBegin else {
        throw FormatProblem("\(what) leaves a hole after byte \(expectedBegin) of the data section")
      }
      let needed = try byteCount(shape: entry.shape, dtype: entry.dtype, of: entry.name)
      guard entry.end - entry.begin == needed else {
        throw FormatProblem("\(what) holds \(entry.end - entry.begin) bytes, but shape \(entry.shape) of \(entry.dtype.safetensorsCode) needs \(needed)")
      }
      expectedBegin = entry.end
    }
    guard expectedBegin == data.count else {
      throw FormatProblem("safetensors: \(data.count - expectedBegin) bytes after the last tensor belong to no tensor")
    }

    var stateDict = StateDict()
    for entry in entries {
      let tensorBytes = UnsafeRawBufferPointer(rebasing: data[entry.begin..<entry.end])
      stateDict.set(entry.name, try Tensor(bytes: tensorBytes, shape: entry.shape, dtype: entry.dtype))
    }
    return (stateDict, metadata)
  }

  private static func parseHeader(_ header: UnsafeRawBufferPointer) throws -> ([TensorEntry], [String: String]) {
    guard header.first == UInt8(ascii: "{") else {
      throw FormatProblem("safetensors: the header does not start with a JSON object")
    }
    let decoded: Header
    do {
      decoded = try JSONDecoder().decode(Header.self, from: Data(header))
    } catch let error as DecodingError {
      throw FormatProblem("safetensors: malformed header: \(describe(error))")
    } catch {
      throw FormatProblem("safetensors: malformed header JSON: \(error)")
    }
    let entries = try decoded.tensors.map { name, info -> TensorEntry in
      guard let dtype = DType(safetensorsCode: info.dtype) else {
        throw FormatProblem("safetensors: tensor '\(name)' has unsupported dtype '\(info.dtype)'")
      }
      guard info.shape.allSatisfy({ $0 >= 0 }) else {
        throw FormatProblem("safetensors: tensor '\(name)' has a negative dimension in shape \(info.shape)")
      }
      guard info.dataOffsets.count == 2 else {
        throw FormatProblem("safetensors: tensor '\(name)' has \(info.dataOffsets.count) data_offsets instead of 2")
      }
      return TensorEntry(name: name, dtype: dtype, shape: info.shape, begin: info.dataOffsets[0], end: info.dataOffsets[1])
    }
    return (entries, decoded.metadata)
  }

  private static func byteCount(shape: [Int], dtype: DType, of name: String) throws -> Int {
    var count = dtype.byteSize
    for size in shape {
      let (product, overflow) = count.multipliedReportingOverflow(by: size)
      guard !overflow else { throw FormatProblem("safetensors: tensor '\(name)' has an impossibly large shape \(shape)") }
      count = product
    }
    return count
  }

  private static func describe(_ error: DecodingError) -> String {
    let context: DecodingError.Context
    switch error {
    case .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c), .dataCorrupted(let c): context = c
    @unknown default: return "\(error)"
    }
    let path = context.codingPath.map(\.stringValue).joined(separator: ".")
    let detail = context.underlyingError.map { " (\($0))" } ?? ""
    return (path.isEmpty ? "" : "at '\(path)': ") + context.debugDescription + detail
  }

  /// The header object: one entry per tensor plus the optional metadata map.
  private struct Header: Decodable {
    struct TensorInfo: Decodable {
      let dtype: String
      let shape: [Int]
      let dataOffsets: [Int]
      enum CodingKeys: String, CodingKey { case dtype, shape, dataOffsets = "data_offsets" }
    }

    struct Key: CodingKey {
      let stringValue: String
      init(stringValue: String) { self.stringValue = stringValue }
      var intValue: Int? { nil }
      init?(intValue: Int) { nil }
    }

    var tensors: [(String, TensorInfo)] = []
    var metadata: [String: String] = [:]

    init(from decoder: Decoder) throws {
      let container = try decoder.container(keyedBy: Key.self)
      for key in container.allKeys {
        if key.stringValue == SafeTensors.metadataKey {
          metadata = try container.decode([String: String].self, forKey: key)
        } else {
          tensors.append((key.stringValue, try container.decode(TensorInfo.self, forKey: key)))
        }
      }
    }
  }

  // MARK: Writing

  private static func headerJSON(_ stateDict: StateDict, metadata: [String: String]) throws -> [UInt8] {
    var fields: [String] = []
    if !metadata.isEmpty {
      let pairs = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
      fields.append("\(jsonString(metadataKey)):{\(pairs.joined(separator: ","))}")
    }
    var offset = 0
    for (name, tensor) in stateDict {
      guard name != metadataKey else {
        throw FormatProblem("safetensors: a tensor cannot be named '\(metadataKey)'")
      }
      let shape = tensor.shape
      let end = offset + shape.reduce(tensor.dtype.byteSize, *)
      let shapeText = shape.map(String.init).joined(separator: ",")
      fields.append(
        "\(jsonString(name)):{\"dtype\":\"\(tensor.dtype.safetensorsCode)\",\"shape\":[\(shapeText)],\"data_offsets\":[\(offset),\(end)]}")
      offset = end
    }
    return Array("{\(fields.joined(separator: ","))}".utf8)
  }

  private static func jsonString(_ text: String) -> String { text.doubleQuoted }
}

extension DType {
  /// The dtype's name in safetensors headers.
  var safetensorsCode: String {
    switch self {
    case .float64: return "F64"
    case .float32: return "F32"
    case .float16: return "F16"
    case .bfloat16: return "BF16"
    case .int64: return "I64"
    case .int32: return "I32"
    case .int16: return "I16"
    case .int8: return "I8"
    case .uint8: return "U8"
    case .bool: return "BOOL"
    }
  }

  init?(safetensorsCode: String) {
    guard let match = DType.allCases.first(where: { $0.safetensorsCode == safetensorsCode }) else { return nil }
    self = match
  }
}
