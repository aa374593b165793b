import Foundation
import SegKitData
import SegKitTestSupport
import XCTest

final class DataCheckTests: XCTestCase {
  private var root: URL!

  override func setUpWithError() throws { root = try Oracle.temporaryDirectory("segkit-check") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  private func path(_ relative: String) -> URL { root.appendingPathComponent(relative) }

  /// A folder dataset with 3 classes: one good sample and one of each problem.
  private func makeDataset() throws {
    try DataFixtures.write("background\ncat\ndog\n", to: path("classes.txt"))
    try DataFixtures.image(path("images/good.png"))
    try DataFixtures.label(path("masks/good.png"), values: [0, 0, 1, 2, 255, 255], palette: false)
    try DataFixtures.image(path("images/nolabel.png"))
    try DataFixtures.image(path("images/small.png"))
    try DataFixtures.label(path("masks/small.png"), values: [0], width: 4, height: 3, palette: false)
    try DataFixtures.image(path("images/range.png"))
    try DataFixtures.label(path("masks/range.png"), values: [0, 7], palette: false)
    try DataFixtures.image(path("images/truncated.png"))
    let full = try Data(contentsOf: path("masks/good.png"))
    try full.prefix(full.count / 2).write(to: path("masks/truncated.png"))
  }

  func testProblemsNameTheirFiles() throws {
    try makeDataset()
    let report = try SegmentationDataset.folder(root: root).check()
    XCTAssertEqual(report.samples, 5)
    let byFile = Dictionary(grouping: report.problems, by: { URL(fileURLWithPath: $0.file).pathComponents.suffix(2).joined(separator: "/") })
    XCTAssertEqual(Set(byFile.keys), ["images/nolabel.png", "masks/small.png", "masks/range.png", "masks/truncated.png"])
    XCTAssertTrue(byFile["images/nolabel.png"]![0].problem.contains("image without label"))
    XCTAssertTrue(byFile["masks/small.png"]![0].problem.contains("label is 4×3 but its image small.png is 8×6"))
    XCTAssertTrue(byFile["masks/range.png"]![0].problem.contains("value 7 (24 px) outside"), byFile["masks/range.png"]![0].problem)
    XCTAssertFalse(byFile["masks/truncated.png"]![0].problem.isEmpty)
    // Counts: good 48 px of [0,0,1,2,255,255] cycled; small 12 px of 0; range 24 px of 0 (and 24 invalid).
    XCTAssertEqual(report.classes.map(\.pixels), [16 + 12 + 24, 8, 8])
    XCTAssertEqual(report.voidPixels, 16)
    XCTAssertEqual(report.imageSizes, ["8×6": 5])
    XCTAssertTrue(report.text.contains("4 problems"))
  }

  func testJSONSchema() throws {
    try makeDataset()
    let report = try SegmentationDataset.folder(root: root).check()
    let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: report.json()) as? [String: Any])
    XCTAssertTrue(Set(object.keys).isSuperset(of: ["samples", "classes", "void_pixels", "problems"]))
    XCTAssertEqual(object["samples"] as? Int, 5)
    XCTAssertEqual(object["void_pixels"] as? Int, 16)
    let classes = try XCTUnwrap(object["classes"] as? [[String: Any]])
    XCTAssertEqual(classes.count, 3)
    XCTAssertEqual(Set(classes[1].keys), ["id", "name", "pixels"])
    XCTAssertEqual(classes[1]["id"] as? Int, 1)
    XCTAssertEqual(classes[1]["name"] as? String, "cat")
    XCTAssertEqual(classes[1]["pixels"] as? Int, 8)
    let problems = try XCTUnwrap(object["problems"] as? [[String: Any]])
    XCTAssertEqual(problems.count, 4)
    for problem in problems {
      XCTAssertEqual(Set(problem.keys), ["file", "problem"])
      XCTAssertTrue((problem["file"] as? String)?.hasPrefix(root.path) == true)
    }
  }

  func testCleanDatasetHasNoProblems() throws {
    try DataFixtures.image(path("images/a.png"))
    try DataFixtures.label(path("masks/a.png"), values: [3, 255], palette: false)
    let report = try SegmentationDataset.folder(root: root).check()
    XCTAssertEqual(report.problems, [])
    XCTAssertEqual(report.classes.map(\.name), ["class 0", "class 1", "class 2", "class 3"])
    XCTAssertEqual(report.classes.last?.pixels, 24)
  }
}
