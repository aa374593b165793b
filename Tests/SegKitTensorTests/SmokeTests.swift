import SegKitTensor
import XCTest

final class SmokeTests: XCTestCase {
  func testAdd() throws {
    let a = try Tensor([1, 2, 3] as [Float])
    let b = try a + 1
    XCTAssertEqual(try b.toArray(Float.self), [2, 3, 4])
  }
}
