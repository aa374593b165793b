import Foundation
import SegKitData
import SegKitTestSupport
import XCTest

/// One option vocabulary: sizes are HxW (height first); the old spellings still work
/// for one release and say what replaces them.
final class OptionVocabularyCommandTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  func testSizesAreHeightFirstAndTheOldSpellingStillWorks() throws {
    let root = try Oracle.temporaryDirectory("segkit-vocabulary")
    defer { try? FileManager.default.removeItem(at: root) }
    let new = root.appendingPathComponent("new"), old = root.appendingPathComponent("old")
    let made = try SegKitCommand.run(["data", "synth", "--kind", "semantic", "--out", new.path, "--train", "1", "--val", "0",
                                      "--image-size", "32x48"])
    XCTAssertEqual(made.status, 0, made.error)
    XCTAssertTrue(made.output.contains("(32x48,"), made.output)
    XCTAssertFalse(made.error.contains("deprecated"), made.error)
    let before = try SegKitCommand.run(["data", "synth", "--kind", "semantic", "--out", old.path, "--train", "1", "--val", "0",
                                        "--size", "48x32"])
    XCTAssertEqual(before.status, 0, before.error)
    XCTAssertTrue(before.error.contains("--size WIDTHxHEIGHT is deprecated") && before.error.contains("--image-size HxW"), before.error)
    for folder in [new, old] {
      let name = try String(contentsOf: folder.appendingPathComponent("ImageSets/Segmentation/train.txt"), encoding: .utf8)
        .split(separator: "\n")[0]
      let image = try ImageIO.read(folder.appendingPathComponent("JPEGImages/\(name).jpg"))
      XCTAssertEqual([image.height, image.width], [32, 48], folder.lastPathComponent)
    }
    let bad = try SegKitCommand.run(["data", "synth", "--kind", "semantic", "--out", root.appendingPathComponent("bad").path,
                                     "--image-size", "32x"])
    XCTAssertEqual(bad.status, 64, bad.error)
    XCTAssertTrue(bad.error.contains("--image-size must be HxW"), bad.error)
  }
}
