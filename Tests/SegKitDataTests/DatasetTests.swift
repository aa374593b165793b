import Foundation
import SegKitData
import SegKitTestSupport
import XCTest

/// Writes tiny dataset files in their real layouts.
enum DataFixtures {
  static func write(_ text: String, to url: URL) throws {
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try text.write(to: url, atomically: true, encoding: .utf8)
  }

  /// An RGB image whose pixels encode their position, saved as PNG (lossless) whatever the extension:
  /// the decoders sniff the content.
  @discardableResult
  static func image(_ url: URL, width: Int = 8, height: Int = 6, seed: Int = 0) throws -> Image {
    var image = Image(width: width, height: height, channels: 3)
    for y in 0..<height {
      for x in 0..<width {
        image[x, y, 0] = UInt8((x * 30 + seed) % 256)
        image[x, y, 1] = UInt8((y * 40 + seed) % 256)
        image[x, y, 2] = UInt8((seed * 7) % 256)
      }
    }
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try ImageIO.writePNG(image, to: url)
    return image
  }

  /// A label map holding `values` cyclically, as a palette PNG (or gray when `palette` is false).
  @discardableResult
  static func label(_ url: URL, values: [UInt8], width: Int = 8, height: Int = 6, palette: Bool = true) throws -> Image {
    let pixels = (0..<(width * height)).map { values[$0 % values.count] }
    let label = try Image(width: width, height: height, channels: 1, pixels: pixels)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try ImageIO.writePNG(label, to: url, palette: palette ? .pascal : nil)
    return label
  }
}

final class DatasetTests: XCTestCase {
  private var root: URL!

  override func setUpWithError() throws { root = try Oracle.temporaryDirectory("segkit-datasets") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  private func path(_ relative: String) -> URL { root.appendingPathComponent(relative) }

  func testPascalVOCReadsSplitsAndPaletteIndicesExactly() throws {
    let voc = "VOCdevkit/VOC2012/"
    try DataFixtures.image(path(voc + "JPEGImages/2007_000032.jpg"))
    try DataFixtures.image(path(voc + "JPEGImages/2007_000039.jpg"), seed: 3)
    let label = try DataFixtures.label(path(voc + "SegmentationClass/2007_000032.png"), values: [0, 1, 15, 20, 255])
    try DataFixtures.label(path(voc + "SegmentationClass/2007_000039.png"), values: [0])
    try DataFixtures.write("2007_000032\n", to: path(voc + "ImageSets/Segmentation/train.txt"))
    try DataFixtures.write("2007_000039\n", to: path(voc + "ImageSets/Segmentation/val.txt"))

    let train = try SegmentationDataset.voc(root: root, split: "train")  // found under VOCdevkit/VOC2012
    XCTAssertEqual(train.count, 1)
    XCTAssertEqual(train.files[0].name, "2007_000032")
    XCTAssertEqual(train.classNames.count, 21)
    XCTAssertEqual(train.colormap.name, "pascal")
    let sample = try train.loadSample(at: 0)
    XCTAssertEqual(sample.label, label)
    XCTAssertEqual(sample.image.width, 8)
    XCTAssertEqual(try SegmentationDataset.open(.voc, root: path("VOCdevkit/VOC2012"), split: "val").files.map(\.name), ["2007_000039"])
    XCTAssertThrowsError(try SegmentationDataset.voc(root: root, split: "trainval")) { error in
      XCTAssertTrue("\(error)".contains("trainval.txt"), "\(error)")
    }
    // Ids become file names of predictions: one leading out of the dataset is an error naming its line.
    try DataFixtures.write("2007_000032\n../../../outside\n", to: path(voc + "ImageSets/Segmentation/hostile.txt"))
    XCTAssertThrowsError(try SegmentationDataset.voc(root: root, split: "hostile")) { error in
      XCTAssertTrue("\(error)".contains("hostile.txt: line 2 names '../../../outside', which is not a plain name"), "\(error)")
    }
  }

  func testVOCAugUsesVOCTrainPlusSBDMinusVOCVal() throws {
    let voc = "VOC2012/", sbd = "benchmark_RELEASE/dataset/"
    for id in ["a", "b", "c", "d"] { try DataFixtures.image(path(voc + "JPEGImages/\(id).jpg")) }
    try DataFixtures.image(path(sbd + "img/e.jpg"))  // only in SBD
    try DataFixtures.label(path(voc + "SegmentationClass/a.png"), values: [1, 255])
    try DataFixtures.label(path(voc + "SegmentationClass/b.png"), values: [2])
    try DataFixtures.write("a\n", to: path(voc + "ImageSets/Segmentation/train.txt"))
    try DataFixtures.write("b\n", to: path(voc + "ImageSets/Segmentation/val.txt"))
    try DataFixtures.write("a\nb\n", to: path(voc + "ImageSets/Segmentation/trainval.txt"))
    try DataFixtures.write("a\nc\nb\n", to: path(sbd + "train.txt"))
    try DataFixtures.write("d\ne\nc\n", to: path(sbd + "val.txt"))
    try MATFileTests.writeGTcls(to: path(sbd + "cls"), names: ["c", "d", "e"], width: 8, height: 6, compressed: true)

    let aug = try SegmentationDataset.vocAug(root: root, split: "train_aug")
    XCTAssertEqual(aug.files.map(\.name), ["a", "c", "d", "e"])
    XCTAssertEqual(aug.files[0].label?.url.path, path(voc + "SegmentationClass/a.png").path)
    guard case .matlab(let url, "GTcls", "Segmentation")? = aug.files[1].label else { return XCTFail("c should come from SBD") }
    XCTAssertEqual(url.lastPathComponent, "c.mat")
    XCTAssertEqual(aug.files[3].image.path, path(sbd + "img/e.jpg").path)
    let c = try XCTUnwrap(try aug.loadSample(at: 1).label)
    XCTAssertEqual(c.pixels, MATFileTests.expectedLabel(seed: 0, width: 8, height: 6))
    XCTAssertEqual(try SegmentationDataset.vocAug(root: root, split: "val").files.map(\.name), ["b"])
  }

  /// cityscapesScripts' labels.py: (id, trainId) for every label, license plate's −1 included.
  static let cityscapesTable: [(id: Int, trainID: Int)] = [
    (0, 255), (1, 255), (2, 255), (3, 255), (4, 255), (5, 255), (6, 255), (7, 0), (8, 1), (9, 255), (10, 255),
    (11, 2), (12, 3), (13, 4), (14, 255), (15, 255), (16, 255), (17, 5), (18, 255), (19, 6), (20, 7), (21, 8),
    (22, 9), (23, 10), (24, 11), (25, 12), (26, 13), (27, 14), (28, 15), (29, 255), (30, 255), (31, 16),
    (32, 17), (33, 18), (-1, -1),
  ]

  func testCityscapesMapsLabelIDsToTrainIDsAsTheOfficialTable() throws {
    for (id, trainID) in Self.cityscapesTable {
      let stored = UInt8(truncatingIfNeeded: id)  // −1 lands on 255 in an 8-bit map
      XCTAssertEqual(LabelMapping.cityscapes.table[Int(stored)], Int16(trainID == -1 ? 255 : trainID), "id \(id)")
    }
    let stem = "aachen_000000_000019"
    try DataFixtures.image(path("leftImg8bit/train/aachen/\(stem)_leftImg8bit.png"), width: 34, height: 2)
    try DataFixtures.image(path("leftImg8bit/train/bochum/bochum_000000_000313_leftImg8bit.png"), width: 34, height: 2)
    try DataFixtures.label(path("gtFine/train/aachen/\(stem)_gtFine_labelIds.png"), values: (0...33).map(UInt8.init),
                           width: 34, height: 2, palette: false)
    let dataset = try SegmentationDataset.cityscapes(root: root, split: "train")
    XCTAssertEqual(dataset.files.map(\.name), [stem, "bochum_000000_000313"])
    XCTAssertEqual(dataset.classNames.count, 19)
    let label = try XCTUnwrap(try dataset.loadSample(at: 0).label)
    let expected = Self.cityscapesTable.filter { $0.id >= 0 }.map { UInt8($0.trainID) }
    XCTAssertEqual(Array(label.pixels[0..<34]), expected)
    XCTAssertThrowsError(try dataset.loadSample(at: 1)) { XCTAssertTrue("\($0)".contains("bochum_000000_000313_gtFine_labelIds.png")) }
    XCTAssertThrowsError(try SegmentationDataset.cityscapes(root: root, split: "val")) {
      XCTAssertTrue("\($0)".contains("leftImg8bit/val") && "\($0)".contains("gtFine/"), "\($0)")
    }
  }

  func testADE20KMakesZeroVoidAndShiftsClasses() throws {
    let base = "ADEChallengeData2016/"
    try DataFixtures.image(path(base + "images/validation/ADE_val_00000001.jpg"))
    try DataFixtures.label(path(base + "annotations/validation/ADE_val_00000001.png"), values: [0, 1, 2, 150], palette: false)
    try DataFixtures.image(path(base + "images/validation/ADE_val_00000002.jpg"))
    try DataFixtures.label(path(base + "annotations/validation/ADE_val_00000002.png"), values: [151], palette: false)
    let dataset = try SegmentationDataset.ade20k(root: root, split: "val")
    XCTAssertEqual(dataset.count, 2)
    XCTAssertEqual(dataset.classNames.count, 150)
    XCTAssertEqual(Array(try XCTUnwrap(try dataset.loadSample(at: 0).label).pixels[0..<4]), [255, 0, 1, 149])
    XCTAssertThrowsError(try dataset.loadSample(at: 1)) { error in
      XCTAssertTrue("\(error)".contains("ADE_val_00000002.png") && "\(error)".contains("151"), "\(error)")
    }
  }

  func testCamVidResolvesSegNetPathsAndVoidsUnlabelled() throws {
    try DataFixtures.image(path("train/0001TP_006690.png"))
    try DataFixtures.label(path("trainannot/0001TP_006690.png"), values: Array(0...11), palette: false)
    try DataFixtures.write("/SegNet/CamVid/train/0001TP_006690.png /SegNet/CamVid/trainannot/0001TP_006690.png\n",
                           to: path("train.txt"))
    let dataset = try SegmentationDataset.camvid(root: root, split: "train")
    XCTAssertEqual(dataset.files.map(\.name), ["0001TP_006690"])
    XCTAssertEqual(dataset.classNames.count, 11)
    XCTAssertEqual(Array(try XCTUnwrap(try dataset.loadSample(at: 0).label).pixels[0..<12]), Array(0...10) + [255])
    try DataFixtures.write("/SegNet/CamVid/train/0001TP_006690.png /SegNet/../../../etc/passwd\n", to: path("val.txt"))
    XCTAssertThrowsError(try SegmentationDataset.camvid(root: root, split: "val")) { error in
      XCTAssertTrue("\(error)".contains("val.txt: line 1 names 'SegNet/../../../etc/passwd', which is not a path inside"), "\(error)")
    }
  }

  func testDAVIS2016GroupsFramesIntoSequences() throws {
    var lines = ""
    for resolution in ["480p", "1080p"] {
      for (sequence, frames) in [("bear", 3), ("blackswan", 2)] {
        for frame in 0..<frames {
          let name = String(format: "%05d", frame)
          try DataFixtures.image(path("JPEGImages/\(resolution)/\(sequence)/\(name).jpg"), seed: frame)
          try DataFixtures.label(path("Annotations/\(resolution)/\(sequence)/\(name).png"), values: frame == 0 ? [0] : [0, 255],
                                 palette: false)
          if resolution == "480p" { lines += "/JPEGImages/480p/\(sequence)/\(name).jpg /Annotations/480p/\(sequence)/\(name).png\n" }
        }
      }
    }
    try DataFixtures.write(lines, to: path("ImageSets/480p/train.txt"))
    try DataFixtures.write(lines.replacingOccurrences(of: "480p", with: "1080p"), to: path("ImageSets/1080p/train.txt"))
    let video = try VideoDataset.davis2016(root: root, split: "train")
    XCTAssertEqual(video.sequences.map(\.name), ["bear", "blackswan"])
    XCTAssertEqual(video.sequences.map(\.frames.count), [3, 2])
    XCTAssertEqual(video.frames.count, 5)
    XCTAssertEqual(video.frames.files[1].name, "bear/00001")
    XCTAssertEqual(Array(try XCTUnwrap(try video.frames.loadSample(at: 1).label).pixels[0..<2]), [0, 1])
    let full = try VideoDataset.davis2016(root: root, split: "train", resolution: .full)
    XCTAssertTrue(full.frames.files[0].image.path.contains("JPEGImages/1080p/bear"))

    // Previous masks: frame 0 of each sequence gets its own; others the frame before.
    let pairs = video.withPreviousMasks
    XCTAssertEqual(try pairs.loadSample(at: 1).masks[.previous]?.pixels.allSatisfy { $0 == 0 }, true)
    XCTAssertEqual(try pairs.loadSample(at: 2).masks[.previous], try video.frames.label(at: 1))
    XCTAssertEqual(try pairs.loadSample(at: 3).masks[.previous], try video.frames.label(at: 3))
  }

  func testDAVIS2017ReadsObjectIDsAtBothResolutions() throws {
    for resolution in ["480p", "Full-Resolution"] {
      for frame in 0..<2 {
        let name = String(format: "%05d", frame)
        try DataFixtures.image(path("JPEGImages/\(resolution)/dogs-jump/\(name).jpg"))
        try DataFixtures.label(path("Annotations/\(resolution)/dogs-jump/\(name).png"), values: [0, 1, 2, 3, 255])
      }
    }
    try DataFixtures.write("dogs-jump\n", to: path("ImageSets/2017/val.txt"))
    let video = try VideoDataset.davis2017(root: root, split: "val")
    XCTAssertEqual(video.sequences.map(\.name), ["dogs-jump"])
    XCTAssertEqual(video.frames.files.map(\.name), ["dogs-jump/00000", "dogs-jump/00001"])
    XCTAssertEqual(Array(try XCTUnwrap(try video.frames.loadSample(at: 0).label).pixels[0..<5]), [0, 1, 2, 3, 255])
    let full = try VideoDataset.davis2017(root: root, split: "val", resolution: .full)
    XCTAssertTrue(full.frames.files[1].image.path.contains("Full-Resolution/dogs-jump/00001.jpg"))
    let report = video.frames.check()
    XCTAssertEqual(report.classes.map(\.name), ["background", "object 1", "object 2", "object 3"])
  }

  func testFolderMatchesByStemWithClassesAndSplits() throws {
    try DataFixtures.image(path("images/cat.jpg"))
    try DataFixtures.image(path("images/dog.png"))
    try DataFixtures.label(path("masks/cat.png"), values: [0, 1, 2, 255], palette: false)
    try DataFixtures.label(path("masks/dog.png"), values: [1], palette: false)
    try DataFixtures.write("background 0 0 0\ncat 255 0 0\ndog 0 255 0\n", to: path("classes.txt"))
    try DataFixtures.write("dog\n", to: path("splits/val.txt"))
    let all = try SegmentationDataset.folder(root: root)
    XCTAssertEqual(all.files.map(\.name), ["cat", "dog"])
    XCTAssertEqual(all.classNames, ["background", "cat", "dog"])
    XCTAssertTrue(all.colormap.colors[1] == (255, 0, 0))
    XCTAssertEqual(Array(try XCTUnwrap(try all.loadSample(at: 0).label).pixels[0..<4]), [0, 1, 2, 255])
    XCTAssertEqual(try SegmentationDataset.folder(root: root, split: "val").files.map(\.name), ["dog"])
    XCTAssertThrowsError(try SegmentationDataset.folder(root: root, split: "test")) { XCTAssertTrue("\($0)".contains("test.txt")) }
  }

  func testMissingRootShowsTheExpectedLayout() {
    for format in DatasetFormat.allCases {
      XCTAssertThrowsError(try SegmentationDataset.open(format, root: path("nothing-here"))) { error in
        XCTAssertTrue("\(error)".contains("nothing-here: no such folder"), "\(format): \(error)")
        XCTAssertTrue("\(error)".contains(format.expectedLayout), "\(format): \(error)")
      }
    }
  }
}
