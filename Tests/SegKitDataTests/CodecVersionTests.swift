import CImageCodecs
import COpticalFlow
import XCTest

final class CodecVersionTests: XCTestCase {
  func testLinkedLibrariesReportVersions() {
    XCTAssertTrue(String(cString: ic_versions()).hasPrefix("libpng 1.6"))
    XCTAssertTrue(String(cString: of_opencv_version()).hasPrefix("4."))
  }
}
