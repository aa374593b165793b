import Foundation
@testable import SegKitTraining
import SegKitTestSupport
import XCTest

/// The localiser's settings: read, checked with errors naming the key, and built into
/// the network a run trains (so its checkpoints carry them).
final class MaskRNNSettingsTests: XCTestCase {
  func testLocaliserSettingsAreCheckedAndReachTheNetwork() throws {
    var config = TrainingConfig()
    (config.task, config.model.name) = (.foreground, "maskrnn_resnet18")
    XCTAssertEqual(config.maskRNN.localiserGateEnlargement, 1)
    XCTAssertEqual(config.maskRNN.localiserFeatures, .layer4)
    try config.apply(overrides: ["localiser_gate_enlargement=1.3", "localiser_features=layer3"])
    XCTAssertNoThrow(try config.validate())
    let network = try XCTUnwrap(try config.makeModel(classes: 1) as? MaskRNN)
    XCTAssertEqual(try XCTUnwrap(network.localiser?.gateEnlargement), 1.3, accuracy: 1e-6)
    XCTAssertEqual(network.localiser?.featureLevel, 3)

    var wrong = config
    try wrong.apply(overrides: ["localiser_gate_enlargement=0.5"])
    XCTAssertThrowsError(try wrong.validate()) { error in
      XCTAssertTrue("\(error)".contains("'localiser_gate_enlargement' must be in [1, 4]"), "\(error)")
    }
    XCTAssertThrowsError(try config.apply(overrides: ["localiser_features=layer2"])) { error in
      XCTAssertTrue("\(error)".contains("localiser_features") && "\(error)".contains("layer3, layer4"), "\(error)")
    }
  }
}
