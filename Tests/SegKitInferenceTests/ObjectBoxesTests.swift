import Foundation
import SegKitData
import SegKitInference
import XCTest

/// Boxes around connected regions of chosen classes, and the ground-plane distance.
final class ObjectBoxesTests: XCTestCase {
  func testRegionsOfChosenClassesAndTheirDistance() throws {
    var labels = Image(width: 10, height: 8, channels: 1)
    labels.fill(x: 1, y: 1, width: 3, height: 2, color: [5])   // 6 px of class 5
    labels.fill(x: 6, y: 4, width: 2, height: 4, color: [5])   // 8 px of class 5, apart from the first
    labels.fill(x: 0, y: 6, width: 2, height: 1, color: [3])   // 2 px of class 3
    let boxes = ObjectBoxes.find(in: labels, classes: [5, 3], minimumArea: 3)
    XCTAssertEqual(boxes, [
      ObjectBoxes.Box(label: 5, left: 6, top: 4, right: 7, bottom: 7, area: 8),
      ObjectBoxes.Box(label: 5, left: 1, top: 1, right: 3, bottom: 2, area: 6),
    ])
    XCTAssertEqual(ObjectBoxes.find(in: labels, classes: [3]).map(\.area), [2])
    XCTAssertEqual(ObjectBoxes.find(in: labels, classes: []), [])

    let camera = try GroundPlaneCamera(height: 1.5, focalLength: 1000, horizon: 400)
    // A box whose lowest row is 599 stands 200 rows below the horizon: 1000 × 1.5 / 200.
    XCTAssertEqual(try XCTUnwrap(camera.distance(toGroundRow: 599)), 7.5, accuracy: 1e-12)
    XCTAssertNil(camera.distance(toGroundRow: 399), "at the horizon: no ground distance")
    XCTAssertThrowsError(try GroundPlaneCamera(height: 0, focalLength: 1000, horizon: 400))
  }
}
