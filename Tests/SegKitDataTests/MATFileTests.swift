import Foundation
import SegKitData
import SegKitTestSupport
import XCTest

/// SBD-style .mat files written by scipy.io.savemat in the oracle environment.
final class MATFileTests: XCTestCase {
  private var folder: URL!

  override func setUpWithError() throws { folder = try Oracle.temporaryDirectory("segkit-mat") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

  /// The label of file `seed`: (3x + 5y + seed) mod 21, with 255 (void) at the top-left corner.
  static func expectedLabel(seed: Int, width: Int, height: Int) -> [UInt8] {
    (0..<(width * height)).map { i in
      let (x, y) = (i % width, i / width)
      return i == 0 ? 255 : UInt8((3 * x + 5 * y + seed) % 21)
    }
  }

  /// Writes `<name>.mat` for each name: a struct GTcls as SBD's, with Segmentation (uint8),
  /// Boundaries (a cell of sparse matrices) and CategoriesPresent.
  static func writeGTcls(to folder: URL, names: [String], width: Int, height: Int, compressed: Bool) throws {
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    try Oracle.run("""
      import sys, numpy as np, scipy.io, scipy.sparse
      folder, w, h, compressed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
      for seed, name in enumerate(sys.argv[5:]):
          y, x = np.mgrid[0:h, 0:w]
          seg = ((3 * x + 5 * y + seed) % 21).astype(np.uint8)
          seg[0, 0] = 255
          boundaries = np.empty((2, 1), dtype=object)
          boundaries[0, 0] = scipy.sparse.csc_matrix((seg == 1).astype(bool))
          boundaries[1, 0] = scipy.sparse.csc_matrix((seg == 2).astype(bool))
          gt = {"Boundaries": boundaries, "Segmentation": seg, "CategoriesPresent": np.unique(seg[seg < 255]).astype(np.uint8)}
          scipy.io.savemat(f"{folder}/{name}.mat", {"GTcls": gt}, do_compression=compressed)
      """, arguments: [folder.path, "\(width)", "\(height)", compressed ? "1" : "0"] + names)
  }

  func testReadsSegmentationCompressedAndNot() throws {
    for compressed in [true, false] {
      let sub = folder.appendingPathComponent(compressed ? "z" : "plain")
      try Self.writeGTcls(to: sub, names: ["2008_000002", "2008_000003"], width: 7, height: 5, compressed: compressed)
      for (seed, name) in ["2008_000002", "2008_000003"].enumerated() {
        let label = try MATFile.labelMap(sub.appendingPathComponent("\(name).mat"))
        XCTAssertEqual(label.width, 7)
        XCTAssertEqual(label.height, 5)
        XCTAssertEqual(label.channels, 1)
        XCTAssertEqual(label.pixels, Self.expectedLabel(seed: seed, width: 7, height: 5), "compressed: \(compressed)")
      }
      let variables = try MATFile.read(sub.appendingPathComponent("2008_000002.mat"))
      guard case .numeric(.uint8, let dims, _)? = variables["GTcls"]?["CategoriesPresent"] else {
        return XCTFail("CategoriesPresent should read as uint8")
      }
      XCTAssertEqual(dims.reduce(1, *), 21)
      guard case .cell(let cellDims, let cells)? = variables["GTcls"]?["Boundaries"] else { return XCTFail("Boundaries is a cell") }
      XCTAssertEqual(cellDims, [2, 1])
      guard case .unsupported(class: 5) = cells[0] else { return XCTFail("sparse matrices are kept as unsupported") }
    }
  }

  func testDamagedFilesNameTheFile() throws {
    try Self.writeGTcls(to: folder, names: ["x"], width: 7, height: 5, compressed: true)
    let good = try Data(contentsOf: folder.appendingPathComponent("x.mat"))
    let truncated = folder.appendingPathComponent("truncated.mat")
    try good.prefix(good.count - 20).write(to: truncated)
    XCTAssertThrowsError(try MATFile.labelMap(truncated)) { error in
      XCTAssertTrue("\(error)".hasPrefix(truncated.path + ": "), "\(error)")
    }
    let text = folder.appendingPathComponent("text.mat")
    try Data(repeating: 65, count: 200).write(to: text)
    XCTAssertThrowsError(try MATFile.labelMap(text)) { XCTAssertTrue("\($0)".contains("text.mat: not a MATLAB v5 file"), "\($0)") }
    XCTAssertThrowsError(try MATFile.labelMap(folder.appendingPathComponent("x.mat"), variable: "GTinst")) {
      XCTAssertTrue("\($0)".contains("no variable 'GTinst'"), "\($0)")
    }
  }

  // MARK: - Hostile files, made byte by byte

  /// A little-endian data element: tag, payload, padding to 8 bytes.
  static func element(_ type: UInt32, _ payload: [UInt8]) -> [UInt8] {
    func word(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
    return word(type) + word(UInt32(payload.count)) + payload + [UInt8](repeating: 0, count: (8 - payload.count % 8) % 8)
  }

  static func int32s(_ values: [Int32]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) } }
  static func doubles(_ values: [Double]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }

  /// An miMATRIX of `classID` with its dimension element and name, then `rest`.
  static func matrix(classID: UInt8, dimensions: [UInt8], name: String, rest: [UInt8]) -> [UInt8] {
    element(14, element(6, [classID, 0, 0, 0, 0, 0, 0, 0]) + dimensions + element(1, Array(name.utf8)) + rest)
  }

  static func file(_ elements: [UInt8]) -> Data {
    var header = [UInt8](repeating: 32, count: 116) + [UInt8](repeating: 0, count: 8)
    header += [0x00, 0x01, UInt8(ascii: "I"), UInt8(ascii: "M")]
    return Data(header + elements)
  }

  /// Sizes that cannot be sizes, nesting past the limit, names of absurd length, negative
  /// characters and an inflation bomb: each a DataError naming the file, none a trap.
  func testHostileFilesAreClearErrors() throws {
    let uint8Values = Self.element(2, [1, 2, 3, 4])
    let cases: [(String, [UInt8], String)] = [
      ("nan-dimension", Self.matrix(classID: 9, dimensions: Self.element(9, Self.doubles([.nan, 2])), name: "a", rest: uint8Values),
       "where a whole number"),
      ("huge-dimension", Self.matrix(classID: 9, dimensions: Self.element(9, Self.doubles([0x1p63, 1])), name: "a", rest: uint8Values),
       "where a whole number"),
      ("negative-dimension", Self.matrix(classID: 9, dimensions: Self.element(5, Self.int32s([-1, -1])), name: "a", rest: uint8Values),
       "negative dimension"),
      ("overflowing-dimensions", Self.matrix(classID: 9, dimensions: Self.element(5, Self.int32s([.max, .max, .max, .max])), name: "a",
                                             rest: uint8Values), "more than"),
      ("huge-field-names", Self.matrix(classID: 2, dimensions: Self.element(5, Self.int32s([1, 1])), name: "s",
                                       rest: Self.element(9, Self.doubles([0x1p62])) + Self.element(1, [65, 0])), "field names of"),
      ("many-elements", Self.matrix(classID: 2, dimensions: Self.element(5, Self.int32s([2048, 1024])), name: "s",
                                    rest: Self.element(5, Self.int32s([0])) + Self.element(1, [])), "elements, more than"),
    ]
    for (name, bytes, message) in cases {
      let url = folder.appendingPathComponent("\(name).mat")
      try Self.file(bytes).write(to: url)
      XCTAssertThrowsError(try MATFile.read(url), name) { error in
        XCTAssertTrue("\(error)".hasPrefix(url.path + ": ") && "\(error)".contains(message), "\(name): \(error)")
      }
    }

    // Cells nested 1,000 deep (20,000 overflowed the stack before the limit): refused at the depth limit.
    var nested = Self.matrix(classID: 6, dimensions: Self.element(5, Self.int32s([1, 1])), name: "", rest: Self.element(9, Self.doubles([1])))
    for _ in 0..<1_000 { nested = Self.matrix(classID: 1, dimensions: Self.element(5, Self.int32s([1, 1])), name: "", rest: nested) }
    let deep = folder.appendingPathComponent("deep.mat")
    try Self.file(nested).write(to: deep)
    XCTAssertThrowsError(try MATFile.read(deep)) { XCTAssertTrue("\($0)".contains("nest more than 64 deep"), "\($0)") }

    // Negative character codes read as replacement characters.
    let text = Self.matrix(classID: 4, dimensions: Self.element(5, Self.int32s([1, 2])), name: "t", rest: Self.element(3, [0xFB, 0xFF, 65, 0]))
    let textURL = folder.appendingPathComponent("text-codes.mat")
    try Self.file(text).write(to: textURL)
    guard case .text(let string)? = try MATFile.read(textURL)["t"] else { return XCTFail("t is text") }
    XCTAssertEqual(string, "?A")

    // A compressed element of 300 KB that inflates to 300 MB: refused at the inflation limit.
    let bomb = folder.appendingPathComponent("bomb.mat")
    try Oracle.run("""
      import sys, zlib, struct
      inner = struct.pack("<II", 14, 300 << 20) + bytes(300 << 20)
      packed = zlib.compress(inner, 9)
      header = b" " * 116 + bytes(8) + b"\\x00\\x01IM"
      open(sys.argv[1], "wb").write(header + struct.pack("<II", 15, len(packed)) + packed)
      """, arguments: [bomb.path])
    XCTAssertLessThan(try Data(contentsOf: bomb).count, 1 << 20)
    XCTAssertThrowsError(try MATFile.read(bomb)) { error in
      XCTAssertTrue("\(error)".hasPrefix(bomb.path + ": ") && "\(error)".contains("inflates to more than 268435456 bytes"), "\(error)")
    }
  }
}
