import Foundation
import SegKitData
import XCTest

/// The service's request formats, fast tier: COCO run-length strings as pycocotools
/// writes them (the expected strings were printed by pycocotools 2.0.10's `mask.encode`),
/// and multipart forms with their errors.
final class RequestFormatTests: XCTestCase {
  func testRunLengthStringsAreThoseOfPycocotools() throws {
    // A 7×9 mask (row-major below) and its counts, with negative differences ("O", "N", "M").
    let bits: [UInt8] = [1, 0, 0, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0,
                         0, 0, 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    let mask = try Image(width: 9, height: 7, channels: 1, pixels: bits.map { $0 * 4 })
    let rle = RunLengthEncoding(labels: mask, value: 4)
    XCTAssertEqual(rle.size, [7, 9])
    XCTAssertEqual(rle.counts, "021O0010O141MNO011OO10O21NO001200O001")
    XCTAssertEqual(try rle.mask(value: 4).pixels, mask.pixels)

    // Long runs (several 5-bit groups) and a band with a hole.
    var band = Image(width: 60, height: 40, channels: 1)
    for y in 5..<35 { for x in 0..<60 where !((10..<12).contains(y) && (3..<50).contains(x)) { band.pixels[y * 60 + x] = 1 } }
    let counts = "5n0:0000WOHb08^O" + String(repeating: "Hb08^O", count: 45) + "Hb087000000000000000000K"
    XCTAssertEqual(RunLengthEncoding(labels: band, value: 1).counts, counts)
    XCTAssertEqual(try RunLengthEncoding(size: [40, 60], counts: counts).mask().pixels, band.pixels)
  }

  func testRunLengthErrorsNameTheFieldAndComeBeforeAllocation() {
    func message(_ rle: RunLengthEncoding, maxPixels: Int = 1 << 20) -> String {
      do { _ = try rle.mask(maxPixels: maxPixels, field: "body.rle"); return "accepted" } catch { return "\(error)" }
    }
    XCTAssertTrue(message(.init(size: [30_000, 30_000], counts: "0")).contains("over the limit of 1048576 pixels"))
    XCTAssertTrue(message(.init(size: [4], counts: "0")).contains("body.rle.size must be [height, width]"))
    XCTAssertTrue(message(.init(size: [4, 5], counts: "3")).contains("covers 3 pixels, the size 4×5 has 20"))
    XCTAssertTrue(message(.init(size: [4, 5], counts: "\u{7f}")).contains("not a COCO run-length string"))
    XCTAssertTrue(message(.init(size: [4, 5], counts: "0O")).contains("a run of"), "a negative run")
  }

  func testMultipartFormsAndTheirErrors() throws {
    let body = Data("preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nstreet\r\n--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a b.png\"\r\nContent-Type: image/png\r\n\r\n".utf8)
      + Data([0x89, 0x50, 0x0D, 0x0A, 0x2D, 0x2D]) + Data("\r\n--XyZ--\r\n".utf8)
    XCTAssertEqual(try MultipartForm.boundary(contentType: "multipart/form-data; boundary=\"XyZ\""), "XyZ")
    XCTAssertNil(try MultipartForm.boundary(contentType: "image/png"))
    let form = try MultipartForm(body, boundary: "XyZ")
    XCTAssertEqual(form.parts.map(\.name), ["model", "image"])
    XCTAssertEqual(form.fields, ["model": "street"])
    XCTAssertEqual(form["image"]?.filename, "a b.png")
    XCTAssertEqual(form["image"]?.contentType, "image/png")
    XCTAssertEqual(form["image"]?.body, Data([0x89, 0x50, 0x0D, 0x0A, 0x2D, 0x2D]), "CR LF and dashes inside a part are data")

    func message(_ data: Data, _ boundary: String = "XyZ") -> String {
      do { _ = try MultipartForm(data, boundary: boundary); return "accepted" } catch { return "\(error)" }
    }
    XCTAssertTrue(message(body.prefix(body.count - 12)).contains("no closing boundary"))
    XCTAssertTrue(message(Data("--XyZ\r\nContent-Disposition: form-data".utf8)).contains("headers do not end"))
    XCTAssertTrue(message(Data("nothing here".utf8)).contains("no multipart boundary"))
    XCTAssertTrue(message(Data("--XyZ\r\nContent-Type: x\r\n\r\nv\r\n--XyZ--".utf8)).contains("no name"))
    XCTAssertThrowsError(try MultipartForm.boundary(contentType: "multipart/form-data"))
  }
}
