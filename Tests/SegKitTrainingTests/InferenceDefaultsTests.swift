import SegKitTraining
import XCTest

/// What a run writes into model.json for inference comes from its configuration, and
/// only the settings of its own kind of model.
final class InferenceDefaultsTests: XCTestCase {
  func testEachKindOfRunKeepsItsOwnInferenceSettings() throws {
    var semantic = TrainingConfig()
    (semantic.model.name, semantic.data.dataset, semantic.data.datasetDir) = ("unet_resnet18", "cityscapes", "/data/cs")
    (semantic.evaluation.evalScales, semantic.evaluation.addFlippedImages, semantic.evaluation.evalCropSize) = ([0.5, 1], true, [512, 1024])
    semantic.data.ignoreLabel = 254
    let defaults = semantic.inferenceDefaults
    XCTAssertEqual(defaults.scales, [0.5, 1])
    XCTAssertTrue(defaults.flip)
    XCTAssertEqual(defaults.crop, [512, 1024])
    XCTAssertEqual([defaults.dataset, defaults.datasetDir, defaults.valSplit], ["cityscapes", "/data/cs", "val"])
    XCTAssertEqual(defaults.ignoreLabel, 254)
    XCTAssertNil(defaults.warpAt)
    XCTAssertNil(defaults.flowMethod)

    var warp = TrainingConfig()
    (warp.task, warp.model.name, warp.data.dataset, warp.flow.warpAt, warp.flow.inputScale) = (.flow, "flownets_thin", "cityscapes", "output", 0.5)
    XCTAssertEqual(warp.inferenceDefaults.warpAt, "output")
    XCTAssertEqual(warp.inferenceDefaults.flowInputScale, 0.5)
    warp.data.dataset = "flying_chairs"
    XCTAssertNil(warp.inferenceDefaults.warpAt, "a flow run on frame pairs is no warp path")

    var maskRNN = TrainingConfig()
    (maskRNN.task, maskRNN.model.name, maskRNN.maskRNN.flowMethod, maskRNN.maskRNN.flowWeights) = (.foreground, "maskrnn_vgg16", "flownets_thin", "w.safetensors")
    XCTAssertEqual(maskRNN.inferenceDefaults.flowMethod, "flownets_thin")
    XCTAssertEqual(maskRNN.inferenceDefaults.flowWeights, "w.safetensors")
    XCTAssertEqual(maskRNN.inferenceDefaults.flowPreset, "medium", "DIS medium is the default preset")
  }
}
