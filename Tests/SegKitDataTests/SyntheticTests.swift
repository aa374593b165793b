import Foundation
import SegKitData
import SegKitTestSupport
import XCTest

final class SyntheticTests: XCTestCase {
  private var folder: URL!

  override func setUpWithError() throws {
    folder = try Oracle.temporaryDirectory("segkit-synth")
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(at: folder)
  }

  /// Relative path → bytes of every file under `root`.
  private func files(_ root: URL) throws -> [String: Data] {
    var result: [String: Data] = [:]
    let base = root.resolvingSymlinksInPath().path + "/"
    for case let file as URL in FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)! {
      if (try? file.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true { continue }
      result[file.resolvingSymlinksInPath().path.replacingOccurrences(of: base, with: "")] = try Data(contentsOf: file)
    }
    return result
  }

  private func lines(_ url: URL) throws -> [String] {
    try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init)
  }

  func testSemanticLayoutLabelsAndDeterminism() throws {
    var options = Synthetic.SemanticOptions()
    (options.trainCount, options.valCount, options.width, options.height, options.seed) = (6, 3, 48, 40, 7)
    let a = folder.appendingPathComponent("a"), b = folder.appendingPathComponent("b")
    try Synthetic.writeSemantic(to: a, options: options)
    try Synthetic.writeSemantic(to: b, options: options)
    let filesA = try files(a)
    XCTAssertEqual(filesA, try files(b))

    let train = try lines(a.appendingPathComponent("ImageSets/Segmentation/train.txt"))
    let val = try lines(a.appendingPathComponent("ImageSets/Segmentation/val.txt"))
    XCTAssertEqual(train, (1...6).map { String(format: "synth_%06d", $0) })
    XCTAssertEqual(val.count, 3)
    XCTAssertEqual(try lines(a.appendingPathComponent("ImageSets/Segmentation/trainval.txt")), train + val)
    XCTAssertEqual(Set(filesA.keys), Set((train + val).flatMap { ["JPEGImages/\($0).jpg", "SegmentationClass/\($0).png"] }
      + ["ImageSets/Segmentation/train.txt", "ImageSets/Segmentation/val.txt", "ImageSets/Segmentation/trainval.txt", "classes.txt"]))

    var seen = Set<UInt8>()
    for name in train + val {
      let label = try ImageIO.readLabel(a.appendingPathComponent("SegmentationClass/\(name).png"))
      XCTAssertEqual([label.width, label.height], [48, 40])
      XCTAssertTrue(try ImageIO.size(of: a.appendingPathComponent("JPEGImages/\(name).jpg")) == (48, 40))
      let values = Set(label.pixels)
      XCTAssertTrue(values.isSubset(of: Set(0...5).union([255])), "\(name): \(values.sorted())")
      XCTAssertTrue(values.contains { $0 != 0 && $0 != 255 }, "\(name) has no object")
      seen.formUnion(values)
    }
    XCTAssertGreaterThanOrEqual(seen.count, 5)

    options.seed = 8
    let c = folder.appendingPathComponent("c")
    try Synthetic.writeSemantic(to: c, options: options)
    XCTAssertNotEqual(try files(c)["JPEGImages/synth_000001.jpg"], filesA["JPEGImages/synth_000001.jpg"])
  }

  func testDAVIS2017Layout() throws {
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames, options.width, options.height) = (2, 1, 5, 48, 32)
    options.objects = 2
    options.seed = 3
    let a = folder.appendingPathComponent("a"), b = folder.appendingPathComponent("b")
    try Synthetic.writeVideo(to: a, options: options)
    try Synthetic.writeVideo(to: b, options: options)
    let filesA = try files(a)
    XCTAssertEqual(filesA, try files(b))
    XCTAssertEqual(try lines(a.appendingPathComponent("ImageSets/2017/train.txt")), ["synth-train-000", "synth-train-001"])
    XCTAssertEqual(try lines(a.appendingPathComponent("ImageSets/2017/val.txt")), ["synth-val-000"])
    for sequence in ["synth-train-000", "synth-train-001", "synth-val-000"] {
      var ids = Set<UInt8>()
      for t in 0..<5 {
        let frame = String(format: "%05d", t)
        XCTAssertNotNil(filesA["JPEGImages/480p/\(sequence)/\(frame).jpg"])
        let mask = try ImageIO.readLabel(a.appendingPathComponent("Annotations/480p/\(sequence)/\(frame).png"))
        XCTAssertEqual([mask.width, mask.height], [48, 32])
        ids.formUnion(mask.pixels)
      }
      XCTAssertEqual(ids, [0, 1, 2], sequence)
    }
    // Frames and masks, two split lists, and the exact flows of 4 pairs each way.
    XCTAssertEqual(filesA.count, 3 * 5 * 2 + 2 + 3 * 4 * 2)
  }

  func testDAVIS2016Layout() throws {
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames, options.width, options.height) = (1, 1, 3, 40, 24)
    options.layout = .davis2016
    try Synthetic.writeVideo(to: folder, options: options)
    let pairs = try lines(folder.appendingPathComponent("ImageSets/480p/train.txt"))
    XCTAssertEqual(pairs.first, "/JPEGImages/480p/synth-train-000/00000.jpg /Annotations/480p/synth-train-000/00000.png")
    XCTAssertEqual(pairs.count, 3)
    for pair in pairs + (try lines(folder.appendingPathComponent("ImageSets/480p/val.txt"))) {
      let parts = pair.split(separator: " ").map { folder.appendingPathComponent(String($0.dropFirst())) }
      XCTAssertEqual(parts.count, 2)
      XCTAssertNoThrow(try ImageIO.read(parts[0]))
      let mask = try ImageIO.readLabel(parts[1])
      XCTAssertTrue(Set(mask.pixels).isSubset(of: [0, 255]))
      XCTAssertTrue(mask.pixels.contains(255))
    }
    options.objects = 2
    XCTAssertThrowsError(try Synthetic.writeVideo(to: folder, options: options))
  }
}
