import SegKitNN
import XCTest

final class ImportTests: XCTestCase {
  func testTensorLayerIsReexported() throws {
    XCTAssertEqual(try Tensor.ones([2]).sum().item(), 2)
  }
}
