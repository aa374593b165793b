import Foundation

/// A multipart/form-data body (RFC 7578), as a browser or curl sends a form with files split into its named parts. Only what a form
/// sends is read: each part's `name` and `filename` from Content-Disposition, and its
/// bytes. Anything malformed (no boundary, a part without its closing boundary, a
/// header block without its blank line) is an error naming what is missing.
public struct MultipartForm: Sendable {
  public struct Part: Sendable {
    public let name: String
    public let filename: String?
    public let contentType: String?
    public let body: Data
  }

  public let parts: [Part]

  /// The first part called `name`.
  public subscript(name: String) -> Part? { parts.first { $0.name == name } }

  /// The form's text fields (parts without a file name) as strings.
  public var fields: [String: String] {
    var out: [String: String] = [:]
    for part in parts where part.filename == nil && out[part.name] == nil {
      out[part.name] = String(decoding: part.body, as: UTF8.self)
    }
    return out
  }

  /// The boundary of a `multipart/form-data; boundary=…` content type, nil for any other type.
  public static func boundary(contentType: String) throws -> String? {
    let pieces = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
    guard let kind = pieces.first, kind.lowercased() == "multipart/form-data" else { return nil }
    for piece in pieces.dropFirst() where piece.lowercased().hasPrefix("boundary=") {
      var value = String(piece.dropFirst("boundary=".count))
      if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
      guard (1...70).contains(value.utf8.count) else { throw MultipartError("the multipart boundary must be 1 to 70 characters") }
      return value
    }
    throw MultipartError("multipart/form-data without a boundary parameter")
  }

  public init(_ body: Data, boundary: String, maxParts: Int = 64) throws {
    let delimiter = Array("--\(boundary)".utf8)
    let bytes = [UInt8](body)
    guard var position = Self.find(delimiter, in: bytes, from: 0) else {
      throw MultipartError("the body holds no multipart boundary")
    }
    var parts: [Part] = []
    while true {
      position += delimiter.count
      // "--" after a delimiter closes the form.
      if position + 1 < bytes.count, bytes[position] == 0x2D, bytes[position + 1] == 0x2D { break }
      guard position + 1 < bytes.count, bytes[position] == 0x0D, bytes[position + 1] == 0x0A else {
        throw MultipartError("a multipart boundary is not followed by a line break (the body is truncated or malformed)")
      }
      position += 2
      guard let headerEnd = Self.find(Array("\r\n\r\n".utf8), in: bytes, from: position) else {
        throw MultipartError("a multipart part's headers do not end (the body is truncated)")
      }
      let headers = String(decoding: bytes[position..<headerEnd], as: UTF8.self)
      let start = headerEnd + 4
      guard let end = Self.find(Array("\r\n".utf8) + delimiter, in: bytes, from: start) else {
        throw MultipartError("a multipart part has no closing boundary (the body is truncated)")
      }
      guard parts.count < maxParts else { throw MultipartError("more than \(maxParts) parts in the form") }
      parts.append(try Self.part(headers: headers, body: Data(bytes[start..<end])))
      position = end + 2
    }
    self.parts = parts
  }

  private static func part(headers: String, body: Data) throws -> Part {
    var name: String?, filename: String?, contentType: String?
    for line in headers.components(separatedBy: "\r\n") {
      guard let colon = line.firstIndex(of: ":") else { continue }
      let key = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
      let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
      if key == "content-type" { contentType = value }
      guard key == "content-disposition" else { continue }
      for parameter in value.split(separator: ";").dropFirst() {
        let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        guard pair.count == 2 else { continue }
        var text = pair[1]
        if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 { text = String(text.dropFirst().dropLast()) }
        switch pair[0].lowercased() {
        case "name": name = text
        case "filename": filename = text
        default: break
        }
      }
    }
    guard let name else { throw MultipartError("a multipart part has no name in its Content-Disposition") }
    return Part(name: name, filename: filename, contentType: contentType, body: body)
  }

  /// The first index of `needle` in `haystack` at or after `start`.
  static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
    guard !needle.isEmpty, haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
    let first = needle[0]
    var i = start
    let last = haystack.count - needle.count
    while i <= last {
      if haystack[i] == first {
        var j = 1
        while j < needle.count && haystack[i + j] == needle[j] { j += 1 }
        if j == needle.count { return i }
      }
      i += 1
    }
    return nil
  }
}

public struct MultipartError: Error, CustomStringConvertible, Sendable {
  public let description: String
  init(_ description: String) { self.description = description }
}
