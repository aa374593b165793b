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

  /// A textured disc of radius 22 moving by `shift` over a smooth gradient, on a
  /// 120×160 pair: what a new user tries first.
  static func movingObject(shift: (Double, Double), radius: Double = 22) -> (Image, Image) {
    func frame(_ dx: Double, _ dy: Double) -> Image {
      var image = Image(width: 160, height: 120, channels: 3)
      for y in 0..<120 {
        for x in 0..<160 {
          let (u, v) = (Double(x) - 80 - dx, Double(y) - 60 - dy)
          var value = 60 + 0.5 * Double(x) + 0.3 * Double(y)
          if u * u + v * v <= radius * radius {
            value = 140 + 50 * sin(u * 0.55 + v * 0.2) + 40 * cos(v * 0.45 - u * 0.15)
          }
          for c in 0..<3 { image[x, y, c] = UInt8(max(0, min(255, value + Double(c) * 12))) }
        }
      }
      return image
    }
    return (frame(0, 0), frame(shift.0, shift.1))
  }

  /// The median flow over the object's pixels in the first frame.
  static func objectFlow(_ flow: FlowField, radius: Double = 18, mean: Bool = false) -> (Double, Double) {
    var us: [Double] = [], vs: [Double] = []
    for y in 0..<120 {
      for x in 0..<160 where (Double(x) - 80) * (Double(x) - 80) + (Double(y) - 60) * (Double(y) - 60) <= radius * radius {
        us.append(Double(flow.values[y * 160 + x]))
        vs.append(Double(flow.values[160 * 120 + y * 160 + x]))
      }
    }
    if mean { return (us.reduce(0, +) / Double(us.count), vs.reduce(0, +) / Double(vs.count)) }
    return (us.sorted()[us.count / 2], vs.sorted()[vs.count / 2])
  }

  /// `segkit flow`'s default (DIS medium) recovers a small textured object's
  /// translation within 0.5 px; DIS fast, the old default, blurs it with the background
  /// (measured: (−5.03, 3.52) for (−6, 4) on a disc of radius 12).
  func testDefaultPresetRecoversASmallObjectsShift() throws {
    XCTAssertEqual(OpticalFlow.Preset.default, .medium)
    for radius in [22.0, 12.0] {
      let (a, b) = Self.movingObject(shift: (-6, 4), radius: radius)
      let (u, v) = Self.objectFlow(try OpticalFlow.dis(from: a, to: b), radius: radius, mean: true)
      XCTAssertEqual(u, -6, accuracy: 0.5, "radius \(radius)")
      XCTAssertEqual(v, 4, accuracy: 0.5, "radius \(radius)")
      // Enlarging the frames first gets there too, for a preset that alone does not.
      let (uu, vv) = Self.objectFlow(try OpticalFlow.dis(from: a, to: b, preset: .fast, upscale: 2), radius: radius, mean: true)
      XCTAssertEqual(uu, -6, accuracy: 0.5)
      XCTAssertEqual(vv, 4, accuracy: 0.5)
    }
    XCTAssertThrowsError(try OpticalFlow.dis(from: Image(width: 8, height: 8, channels: 1), to: Image(width: 8, height: 8, channels: 1), upscale: 9))
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
