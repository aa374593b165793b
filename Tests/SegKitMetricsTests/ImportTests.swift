import SegKitMetrics
import XCTest

final class MetricsImportTests: XCTestCase {
  func testTensorLayerIsReexported() throws { XCTAssertEqual(try Tensor.ones([3]).sum().item(), 3) }
}
