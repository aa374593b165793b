import Foundation
import SegKitData
import XCTest

final class OpticalFlowTests: XCTestCase {
  /// A smooth, non-repeating texture sampled at (x - dx, y - dy): the content moves by (dx, dy).
  private func texture(width: Int, height: Int, dx: Double, dy: Double) -> Image {
    var image = Image(width: width, height: height, channels: 3)
    for y in 0..<height {
      for x in 0..<width {
        let (u, v) = (Double(x) - dx, Double(y) - dy)
        let value = 128 + 45 * sin(u * 0.31 + v * 0.07) + 40 * cos(v * 0.27 - u * 0.11) + 30 * sin((u + 2 * v) * 0.19)
        for c in 0..<3 { image[x, y, c] = UInt8(max(0, min(255, value + Double(c) * 10))) }
      }
    }
    return image
  }

  func testShiftIsRecovered() throws {
    let (w, h) = (96, 80)
    let a = texture(width: w, height: h, dx: 0, dy: 0)
    let b = texture(width: w, height: h, dx: 3, dy: -2)
    for preset in OpticalFlow.Preset.allCases {
      let flow = try OpticalFlow.dis(from: a, to: b, preset: preset)
      XCTAssertEqual([flow.width, flow.height], [w, h])
      let values = flow.values
      var sum = (0.0, 0.0)
      var n = 0.0
      for y in 16..<(h - 16) {
        for x in 16..<(w - 16) {
          sum.0 += Double(values[y * w + x])
          sum.1 += Double(values[w * h + y * w + x])
          n += 1
        }
      }
      XCTAssertEqual(sum.0 / n, 3, accuracy: 0.3, "\(preset)")
      XCTAssertEqual(sum.1 / n, -2, accuracy: 0.3, "\(preset)")
    }
  }

  func testGrayFramesAndMismatchedSizes() throws {
    let a = try Image(width: 32, height: 24, channels: 1, pixels: (0..<(32 * 24)).map { UInt8(($0 * 37) % 256) })
    XCTAssertEqual(try OpticalFlow.dis(from: a, to: a, preset: .ultrafast).tensor().shape, [2, 24, 32])
    XCTAssertThrowsError(try OpticalFlow.dis(from: a, to: Image(width: 30, height: 24, channels: 1)))
    // Smaller than DIS's patches: a result or an error, never a crash.
    let tiny = Image(width: 3, height: 2, channels: 3, filling: 9)
    if let flow = try? OpticalFlow.dis(from: tiny, to: tiny, preset: .medium) { XCTAssertEqual(try flow.tensor().shape, [2, 2, 3]) }
  }

  func testFlowFieldRoundTripsThroughATensor() throws {
    let flow = try FlowField(width: 3, height: 2, values: (0..<12).map { Float($0) - 5.5 })
    let tensor = try flow.tensor()
    XCTAssertEqual(tensor.shape, [2, 2, 3])
    XCTAssertEqual(tensor.dtype, .float32)
    XCTAssertEqual(try tensor.toArray(Float.self), flow.values)
    XCTAssertEqual(try FlowField(tensor: tensor), flow)
    XCTAssertThrowsError(try FlowField(tensor: Tensor.zeros([3, 2, 3]))) { XCTAssertTrue("\($0)".contains("[2, H, W]")) }
    XCTAssertThrowsError(try FlowField(tensor: Tensor.zeros([2, 6]))) { XCTAssertTrue("\($0)".contains("[2, H, W]")) }
    XCTAssertThrowsError(try FlowField(width: 3, height: 2, values: [1, 2]))
  }
}
