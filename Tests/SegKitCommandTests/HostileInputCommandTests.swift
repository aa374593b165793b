import Foundation
import SegKitTestSupport
import SegKitTraining
import XCTest

/// The fuzzing regression files fed through the real commands: each is a clear
/// error (exit 1, not a signal) naming the file, and nothing is written.
final class HostileInputCommandTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  static let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../SegKitFuzzTests/Regressions").standardized

  func testWeightFileBombsThroughConvertWeights() throws {
    let scratch = try Oracle.temporaryDirectory("segkit-hostile-weights")
    defer { try? FileManager.default.removeItem(at: scratch) }
    let files = try ["pth", "safetensors"].flatMap { target -> [URL] in
      let folder = Self.regressions.appendingPathComponent(target)
      return try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted().map { folder.appendingPathComponent($0) }
    }
    XCTAssertGreaterThanOrEqual(files.count, 3)
    for file in files {
      let output = scratch.appendingPathComponent("out.safetensors")
      let result = try SegKitCommand.run(["convert-weights", file.path, output.path])
      XCTAssertEqual(result.status, 1, "\(file.lastPathComponent): \(result.error)")
      XCTAssertTrue(result.error.contains(file.path), result.error)
      XCTAssertFalse(FileManager.default.fileExists(atPath: output.path), file.lastPathComponent)
    }
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch.path), [], "no partial file is left behind")
  }

  /// SBD labels that once trapped (a NaN dimension, negative dimensions, cells 1,000 deep)
  /// in a voc_aug dataset: `data check` reports each, naming it.
  func testMATBombsThroughDataCheck() throws {
    let root = try Oracle.temporaryDirectory("segkit-hostile-mat")
    defer { try? FileManager.default.removeItem(at: root) }
    let voc = root.appendingPathComponent("VOC2012"), sbd = root.appendingPathComponent("benchmark_RELEASE/dataset")
    let mats = try FileManager.default.contentsOfDirectory(atPath: Self.regressions.appendingPathComponent("mat").path).sorted()
    let ids = mats.map { ($0 as NSString).deletingPathExtension }
    for folder in ["JPEGImages", "SegmentationClass", "ImageSets/Segmentation"] {
      try FileManager.default.createDirectory(at: voc.appendingPathComponent(folder), withIntermediateDirectories: true)
    }
    for folder in ["img", "cls"] {
      try FileManager.default.createDirectory(at: sbd.appendingPathComponent(folder), withIntermediateDirectories: true)
    }
    let image = try Image(width: 8, height: 6, channels: 3, pixels: [UInt8](repeating: 90, count: 144))
    for (id, mat) in zip(ids, mats) {
      try ImageIO.writeJPEG(image, to: sbd.appendingPathComponent("img/\(id).jpg"))
      try FileManager.default.copyItem(at: Self.regressions.appendingPathComponent("mat/\(mat)"),
                                       to: sbd.appendingPathComponent("cls/\(id).mat"))
    }
    for list in ["train", "val", "trainval"] {
      try Data().write(to: voc.appendingPathComponent("ImageSets/Segmentation/\(list).txt"))
    }
    try Data((ids.joined(separator: "\n") + "\n").utf8).write(to: sbd.appendingPathComponent("train.txt"))
    try Data().write(to: sbd.appendingPathComponent("val.txt"))
    let before = try FileManager.default.subpathsOfDirectory(atPath: root.path).sorted()

    let result = try SegKitCommand.run(["data", "check", root.path, "--format", "voc_aug"])
    XCTAssertEqual(result.status, 1, result.error)
    for id in ids { XCTAssertTrue((result.output + result.error).contains("\(id).mat"), "\(id): \(result.output)") }
    XCTAssertEqual(try FileManager.default.subpathsOfDirectory(atPath: root.path).sorted(), before)
  }
}
