import Foundation
import SegKitNN
import SegKitTestSupport
import XCTest

/// `MemoryGrowth`: a layer's measured heap use per pixel, from two small runs,
/// extends to a large input's, which is then measured for real.
final class MemoryGrowthTests: XCTestCase {
  func testAConvolutionsGrowthPredictsALargerInput() throws {
    let conv = try Conv2d(3, 32, kernelSize: 3, padding: 1)
    let forward = { (size: Size2) in try Torch.withNoGrad { try conv(try Tensor.zeros([1, 3, size.height, size.width])) } }
    let growth = try XCTUnwrap(MemoryGrowth.measure(forward))
    // At least the float32 output: 32 × 4 bytes per pixel.
    XCTAssertGreaterThanOrEqual(growth.bytesPerPixel, 128)
    let large = Size2(512, 512)
    let measured = try XCTUnwrap(try MemoryGrowth.peakHeapBytes { try forward(large) })
    let predicted = growth.bytes(pixels: large.height * large.width)
    XCTAssertEqual(Double(predicted), Double(measured), accuracy: 0.25 * Double(measured), "predicted \(predicted), measured \(measured)")
  }
}
