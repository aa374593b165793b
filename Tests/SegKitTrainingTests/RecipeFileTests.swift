import Foundation
import SegKitTestSupport
import SegKitTraining
import XCTest

/// Every recipe in configs/ reads and passes validation, so a recipe cannot rot.
final class RecipeFileTests: XCTestCase {
  func testEveryRecipeReadsAndValidates() throws {
    let folder = Oracle.packageRoot.appendingPathComponent("configs")
    let recipes = try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil).filter { $0.pathExtension == "yaml" }
    XCTAssertGreaterThanOrEqual(recipes.count, 12)
    for recipe in recipes {
      var config = TrainingConfig()
      XCTAssertNoThrow(try config.apply(contentsOf: recipe), recipe.lastPathComponent)
      // The warp-path recipe is run with the segmentation run named on the command line, as its header shows.
      if config.task == .flow, config.flow.segmentationRun == nil, config.data.dataset == "cityscapes" {
        try config.apply(overrides: ["segmentation_run=SEG"])
      }
      XCTAssertNoThrow(try config.validate(), recipe.lastPathComponent)
    }
  }
}
