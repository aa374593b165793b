import Foundation
import SegKitTestSupport
@testable import SegKitTraining
import XCTest

/// Event files read back by the `tensorboard` package itself (EventAccumulator), with
/// every record's CRCs checked by tensorboard's own masked_crc32c.
final class TensorBoardTests: XCTestCase {
  static let reader = """
    import json, struct, sys, os
    from tensorboard.backend.event_processing import event_accumulator as ea
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    folder = sys.argv[1]
    records = 0
    for name in sorted(os.listdir(folder)):
        assert name.startswith("events.out.tfevents."), name
        data = open(os.path.join(folder, name), "rb").read()
        at = 0
        while at < len(data):
            header = data[at:at + 8]
            (length,) = struct.unpack("<Q", header)
            (length_crc,) = struct.unpack("<I", data[at + 8:at + 12])
            body = data[at + 12:at + 12 + length]
            (body_crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
            assert masked_crc32c(header) == length_crc, "length CRC"
            assert masked_crc32c(body) == body_crc, "data CRC"
            at += 16 + length
            records += 1

    acc = ea.EventAccumulator(folder, size_guidance={ea.SCALARS: 0, ea.IMAGES: 0})
    acc.Reload()
    tags = acc.Tags()
    print(json.dumps({
        "records": records,
        "file_version": acc.file_version,
        "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
        "images": {t: [{"step": e.step, "width": e.width, "height": e.height,
                        "png": e.encoded_image_string.hex()} for e in acc.Images(t)] for t in tags["images"]},
    }))
    """

  struct ReadBack: Decodable {
    struct ImageEvent: Decodable {
      let step: Int
      let width: Int
      let height: Int
      let png: String
    }

    let records: Int
    let file_version: Double?
    let scalars: [String: [[Double]]]
    let images: [String: [ImageEvent]]
  }

  func readBack(_ folder: URL) throws -> ReadBack {
    try JSONDecoder().decode(ReadBack.self, from: Data(try Oracle.run(Self.reader, arguments: [folder.path]).utf8))
  }

  func testScalarsAndImagesReadBackExactly() throws {
    let folder = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let writer = try TensorBoardWriter(directory: folder)
    XCTAssertTrue(writer.url.lastPathComponent.hasPrefix("events.out.tfevents."))
    let losses: [Double] = [2.5, 1.75, 0.123456789, 1e-7]
    for (step, loss) in losses.enumerated() {
      try writer.addScalars([("loss/total", loss), ("learning_rate", 0.007 / Double(step + 1))], step: step * 10)
    }
    try writer.addScalar("val/mIoU", 0.6543, step: 30)
    // A 3×2 RGB image: the PNG bytes must come back unchanged.
    let image = try Image(width: 3, height: 2, channels: 3, pixels: (0..<18).map { UInt8($0 * 14) })
    try writer.addImage("val/prediction", image, step: 30)
    try writer.close()
    XCTAssertThrowsError(try writer.addScalar("late", 1, step: 40)) { XCTAssertTrue("\($0)".contains("is closed")) }

    let back = try readBack(folder)
    XCTAssertEqual(back.records, 1 + losses.count + 2)  // file_version first
    XCTAssertEqual(back.file_version, 2)
    XCTAssertEqual(Set(back.scalars.keys), ["loss/total", "learning_rate", "val/mIoU"])
    // Values are float32 in the file, so compared at float32.
    XCTAssertEqual(back.scalars["loss/total"]?.map { $0[0] }, [0, 10, 20, 30])
    XCTAssertEqual(back.scalars["loss/total"]?.map { Float($0[1]) }, losses.map(Float.init))
    XCTAssertEqual(back.scalars["learning_rate"]?.map { Float($0[1]) }, (0..<4).map { Float(0.007 / Double($0 + 1)) })
    XCTAssertEqual(back.scalars["val/mIoU"]?.first.map { Float($0[1]) }, Float(0.6543))

    let images = try XCTUnwrap(back.images["val/prediction"])
    XCTAssertEqual(images.count, 1)
    XCTAssertEqual(images[0].step, 30)
    XCTAssertEqual(images[0].width, 3)
    XCTAssertEqual(images[0].height, 2)
    let png = folder.appendingPathComponent("expected.png")
    try ImageIO.writePNG(image, to: png)
    let expectedHex = try Data(contentsOf: png).map { String(format: "%02x", $0) }.joined()
    try FileManager.default.removeItem(at: png)
    XCTAssertEqual(images[0].png, expectedHex)
  }

  /// A resumed run's session-start event makes TensorBoard drop what the crashed
  /// session logged after the checkpoint it resumes from.
  func testResumedRunReplacesLaterSteps() throws {
    let folder = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let first = try TensorBoardWriter(directory: folder)
    for step in 0..<8 { try first.addScalar("loss", Double(step), step: step) }
    try first.close()
    let second = try TensorBoardWriter(directory: folder, resumingAt: 5)
    XCTAssertNotEqual(first.url, second.url)
    for step in 5..<7 { try second.addScalar("loss", Double(100 + step), step: step) }
    try second.close()

    let back = try readBack(folder)
    XCTAssertEqual(back.scalars["loss"], [[0, 0], [1, 1], [2, 2], [3, 3], [4, 4], [5, 105], [6, 106]])
  }

  func testEventsAreOnDiskBeforeClose() throws {
    let folder = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let writer = try TensorBoardWriter(directory: folder)
    try writer.addScalar("loss", 1, step: 1)
    // No close: what a crash would leave.
    let back = try readBack(folder)
    XCTAssertEqual(back.scalars["loss"], [[1, 1]])
    withExtendedLifetime(writer) {}
  }

  func testUncreatableFolderIsAClearError() throws {
    let folder = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let file = folder.appendingPathComponent("a-file")
    try Data("x".utf8).write(to: file)
    XCTAssertThrowsError(try TensorBoardWriter(directory: file.appendingPathComponent("logs"))) { error in
      XCTAssertTrue("\(error)".contains(file.appendingPathComponent("logs").path), "\(error)")
    }
  }

  /// CRC-32C check value from RFC 3720 (iSCSI): "123456789" → 0xE3069283.
  func testCRC32CCheckValue() {
    XCTAssertEqual(CRC32C.checksum(Data("123456789".utf8)), 0xE306_9283)
  }
}
