import SegKitTraining
import XCTest

final class TrainingImportTests: XCTestCase {
  func testLowerLayersAreReexported() throws { XCTAssertFalse(ModelZoo.names.isEmpty) }
}
