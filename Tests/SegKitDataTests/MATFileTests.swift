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
}
