import Foundation
import SegKitData
import SegKitTestSupport
import XCTest

/// FlyingChairs' layout (PPM frames, .flo flows, the train/val list) as SegKit writes
/// and reads it, the PPM codec on good and hostile bytes, Cityscapes' sequence layout
/// as the synthetic street snippets fill it, and CamVid's 30 fps layout.
final class FlowPairsAndSnippetsTests: XCTestCase {
  var root: URL!

  override func setUpWithError() throws { root = try Oracle.temporaryDirectory("segkit-flowpairs") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  func testPortablePixmapRoundTripAndHostileHeaders() throws {
    var image = Image(width: 5, height: 3, channels: 3)
    for i in image.pixels.indices { image.pixels[i] = UInt8(i * 7 % 256) }
    let data = try PortablePixmap.encode(image)
    XCTAssertEqual(try PortablePixmap.decode(data, name: "a.ppm"), image)
    // Comments and a smaller largest value (samples rescaled to 0…255).
    let gray = try PortablePixmap.decode(Data("P5 # comment\n2 1\n# another\n15\n".utf8) + Data([15, 5]), name: "g.pgm")
    XCTAssertEqual(gray.pixels, [255, 85])
    let url = root.appendingPathComponent("frame.ppm")
    try PortablePixmap.write(image, to: url)
    XCTAssertEqual(try ImageIO.read(url), image, "ImageIO.read sniffs PPM")

    let hostile: [(String, Data)] = [
      ("truncated samples", Data("P6\n5 3\n255\n".utf8) + Data([1, 2, 3])),
      ("a giant size", Data("P6\n99999999 99999999\n255\n".utf8)),
      ("16-bit samples", Data("P6\n1 1\n65535\n".utf8) + Data([0, 0, 0, 0, 0, 0])),
      ("no height", Data("P6\n5".utf8)),
      ("zero width", Data("P6\n0 3\n255\n".utf8)),
      ("not a pixmap", Data("P3\n1 1\n255\n0 0 0".utf8)),
    ]
    for (what, bytes) in hostile {
      XCTAssertThrowsError(try PortablePixmap.decode(bytes, name: "bad.ppm"), what) { error in
        XCTAssertTrue("\(error)".hasPrefix("bad.ppm: "), "\(what): \(error)")
      }
    }
  }

  func testSyntheticFlyingChairsReadBack() throws {
    var options = Synthetic.FlowOptions()
    (options.trainCount, options.valCount, options.width, options.height) = (3, 2, 64, 48)
    try Synthetic.writeFlowPairs(to: root, options: options)
    let train = try FlowPairs.flyingChairs(root: root, split: "train")
    let val = try FlowPairs.flyingChairs(root: root, split: "val")
    XCTAssertEqual(train.pairs.map(\.name), ["00001", "00002", "00003"])
    XCTAssertEqual(val.pairs.map(\.name), ["00004", "00005"])
    XCTAssertEqual(try FlowPairs.flyingChairs(root: root, split: "all").count, 5)

    let sample = try val.loadSample(at: 1)
    let made = try Synthetic.flowPair(seed: 0, index: 4, width: 64, height: 48)
    XCTAssertEqual(sample.image, made.first)
    XCTAssertEqual(sample.frames[.next], made.second)
    XCTAssertEqual(sample.flows[.next], made.flow)

    XCTAssertThrowsError(try FlowPairs.flyingChairs(root: root, split: "test"))
    try Data("1\n1\n3\n2\n2\n".utf8).write(to: root.appendingPathComponent("FlyingChairs_train_val.txt"))
    XCTAssertThrowsError(try FlowPairs.flyingChairs(root: root, split: "train")) { XCTAssertTrue("\($0)".contains("line 3")) }
    try Data("1\n1\n".utf8).write(to: root.appendingPathComponent("FlyingChairs_train_val.txt"))
    XCTAssertThrowsError(try FlowPairs.flyingChairs(root: root, split: "train")) { XCTAssertTrue("\($0)".contains("2 lines for 5 pairs")) }
    try FileManager.default.removeItem(at: root.appendingPathComponent("data/00002_img2.ppm"))
    XCTAssertThrowsError(try FlowPairs.flyingChairs(root: root, split: "all")) { XCTAssertTrue("\($0)".contains("00002")) }
    XCTAssertThrowsError(try FlowPairs.flyingChairs(root: root.appendingPathComponent("nothing"), split: "all"))
  }

  func testStreetSnippetsInCityscapesSequenceLayout() throws {
    var options = Synthetic.StreetOptions()
    (options.trainSnippets, options.valSnippets, options.frames, options.annotatedFrame, options.width, options.height) = (2, 1, 6, 4, 48, 32)
    try Synthetic.writeStreet(to: root, options: options)
    let snippets = try VideoSnippets.cityscapes(root: root, split: "train")
    XCTAssertEqual(snippets.snippets.map(\.name), ["synth_000000", "synth_000001"])
    XCTAssertEqual(snippets.snippets.map(\.frames.count), [6, 6])
    XCTAssertEqual(snippets.snippets.map(\.annotated), [4, 4])
    XCTAssertEqual(snippets.snippets[0].frames[2].lastPathComponent, "synth_000000_000002_leftImg8bit.png")

    let made = try Synthetic.streetSnippet(seed: 0, split: "train", index: 1, frames: 6, width: 48, height: 32)
    XCTAssertEqual(try ImageIO.read(snippets.snippets[1].frames[3]), made.frames[3])
    XCTAssertNotEqual(made.frames[0], made.frames[5], "the scene moves")
    // Label ids become Cityscapes train ids: road 0, building 2, sky 10, person 11, car 13.
    let label = try snippets.label(of: snippets.snippets[1])
    XCTAssertEqual(label.pixels, made.labels[4].pixels.map { [7: 0, 11: 2, 23: 10, 24: 11, 26: 13][$0]! })
    XCTAssertTrue(Set(label.pixels).isSubset(of: [0, 2, 10, 11, 13]))
    // The annotated frame is also a Cityscapes image with its gtFine label, for the segmentation path.
    let images = try SegmentationDataset.cityscapes(root: root, split: "train")
    XCTAssertEqual(images.count, 2)
    XCTAssertEqual(try images.loadSample(at: 1).image, made.frames[4])

    XCTAssertThrowsError(try VideoSnippets.cityscapes(root: root, split: "test"))
    try FileManager.default.removeItem(at: root.appendingPathComponent("gtFine/val"))
    XCTAssertThrowsError(try VideoSnippets.cityscapes(root: root, split: "val")) { XCTAssertTrue("\($0)".contains("no snippet")) }
  }

  func testCamVidVideoSnippetsEndAtEachAnnotatedFrame() throws {
    // One sequence: frames 10…70, annotations at 12, 39 and 69, frame 60 missing.
    let frames = root.appendingPathComponent("val/16E5_10_70"), labels = root.appendingPathComponent("valannot/16E5_10_70")
    try FileManager.default.createDirectory(at: frames, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: labels, withIntermediateDirectories: true)
    for number in 10...70 where number != 60 {
      let image = Image(width: 4, height: 2, channels: 3, filling: UInt8(number))
      try ImageIO.writePNG(image, to: frames.appendingPathComponent(String(format: "16E5_%06d.png", number)))
    }
    for number in [12, 39, 69] {
      let label = try Image(width: 4, height: 2, channels: 1, pixels: [0, 1, 2, 3, 4, 10, 11, UInt8(number % 11)])
      try ImageIO.writePNG(label, to: labels.appendingPathComponent(String(format: "16E5_%06d.png", number)))
    }
    let snippets = try VideoSnippets.camvid(root: root, split: "val")
    XCTAssertEqual(snippets.snippets.map(\.name), ["16E5_10_70/16E5_000012", "16E5_10_70/16E5_000039", "16E5_10_70/16E5_000069"])
    // From the previous annotated frame (or the first frame) up to 30 frames; the gap at 60 cuts the last.
    XCTAssertEqual(snippets.snippets.map(\.frames.count), [3, 27, 9])
    XCTAssertEqual(snippets.snippets.map(\.annotated), [2, 26, 8])
    XCTAssertEqual(snippets.snippets[1].frames.first?.lastPathComponent, "16E5_000013.png")
    XCTAssertEqual(snippets.snippets[2].frames.first?.lastPathComponent, "16E5_000061.png")
    XCTAssertEqual(try snippets.label(of: snippets.snippets[1]).pixels, [0, 1, 2, 3, 4, 10, 255, 6], "11 (unlabelled) is void")
    XCTAssertEqual(snippets.classNames.count, 11)
    XCTAssertEqual(try VideoSnippets.named("camvid", root: root, split: "val").snippets.count, 3)
    let pairs = try KeyFramePairs(snippets, maximumDistance: 2)
    XCTAssertEqual(pairs.count, (1 + 2) + (1 + 2 * 25) + (1 + 2 * 7))

    // Hostile layouts name the file or folder.
    try ImageIO.writePNG(try Image(width: 4, height: 2, channels: 1, pixels: [0, 1, 2, 3, 4, 5, 6, 12]),
                         to: labels.appendingPathComponent("16E5_000069.png"))
    XCTAssertThrowsError(try snippets.label(of: snippets.snippets[2])) { XCTAssertTrue("\($0)".contains("16E5_000069.png")) }
    XCTAssertThrowsError(try VideoSnippets.camvid(root: root, split: "test")) { XCTAssertTrue("\($0)".contains("test")) }
    XCTAssertThrowsError(try VideoSnippets.named("davis", root: root, split: "val"))
    try Data().write(to: frames.appendingPathComponent("16E5_last.png"))
    XCTAssertThrowsError(try VideoSnippets.camvid(root: root, split: "val")) { XCTAssertTrue("\($0)".contains("16E5_last.png")) }
    try FileManager.default.removeItem(at: frames.appendingPathComponent("16E5_last.png"))
    try FileManager.default.copyItem(at: frames.appendingPathComponent("16E5_000011.png"), to: frames.appendingPathComponent("16E5_11.png"))
    XCTAssertThrowsError(try VideoSnippets.camvid(root: root, split: "val")) { XCTAssertTrue("\($0)".contains("two files for frame 11")) }
  }
}
