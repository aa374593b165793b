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

  /// A run started from a MaskRNN checkpoint whose localiser reads other features is
  /// refused, naming the setting; one that matches takes the run's enlargements.
  func testInitialCheckpointMustMatchTheLocaliserFeatures() throws {
    let root = try Oracle.temporaryDirectory("segkit-maskrnn-settings")
    defer { try? FileManager.default.removeItem(at: root) }
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames, options.width, options.height) = (1, 0, 3, 48, 32)
    (options.objects, options.seed, options.layout) = (1, 3, .davis2017)
    try Synthetic.writeVideo(to: root, options: options)
    let checkpoint = root.appendingPathComponent("layer4.safetensors")
    let layer4 = try MaskRNN(encoder: "resnet18")
    layer4.localiser?.gateEnlargement = 3
    try StateDict(try layer4.stateDict()).save(to: checkpoint)
    var config = TrainingConfig()
    try config.apply(yaml: """
      task: foreground
      model: maskrnn_resnet18
      dataset: davis2017
      dataset_dir: \(root.path)
      val_split: ""
      initial_checkpoint: \(checkpoint.path)
      localiser_gate_enlargement: 1.5
      training_number_of_steps: 1
      train_batch_size: 1
      workers: 0
      """)
    let task = try MaskPropagationTask(config: config, device: .cpu)
    XCTAssertEqual(task.network.localiser?.gateEnlargement, 1.5, "the run's setting, not the checkpoint's")
    try config.apply(overrides: ["localiser_features=layer3"])
    XCTAssertThrowsError(try MaskPropagationTask(config: config, device: .cpu)) { error in
      XCTAssertTrue("\(error)".contains("'localiser_features' is layer3") && "\(error)".contains("reads layer4"), "\(error)")
    }
  }
}
