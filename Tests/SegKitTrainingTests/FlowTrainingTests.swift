import Foundation
import SegKitData
import SegKitTestSupport
import SegKitTraining
import XCTest

/// Task flow in the one training loop: a thin FlowNetS trained on synthetic pairs in
/// FlyingChairs' layout fits them well below the zero-flow error, resumes exactly and records
/// the lowest error as its best; the same network trained as DVSNet's warp path on
/// video snippets, imitating a frozen segmentation run; and the settings it refuses.
final class FlowTrainingTests: XCTestCase {
  var root: URL!

  override func setUpWithError() throws {
    root = try Oracle.temporaryDirectory("segkit-flow-training")
    try SlowTest.skipInFastTier()
  }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  func flowConfig(dataset: URL, steps: Int) throws -> TrainingConfig {
    var config = TrainingConfig()
    try config.apply(yaml: """
      task: flow
      dataset: flying_chairs
      model: flownets_thin
      train_crop_size: [64, 128]
      train_batch_size: 8
      min_scale_factor: 1.0
      max_scale_factor: 1.0
      flip_probability: 0.5
      optimizer: adam
      base_learning_rate: 0.001
      weight_decay: 0.0
      log_interval: 1000
      val_interval: 0
      threads: 2
      workers: 1
      """)
    config.data.datasetDir = dataset.path
    config.schedule.trainingNumberOfSteps = steps
    try config.validate()
    return config
  }

  func testTrainsBelowZeroFlowAndResumesExactly() throws {
    let data = root.appendingPathComponent("chairs")
    var options = Synthetic.FlowOptions()
    (options.trainCount, options.valCount, options.width, options.height) = (32, 4, 128, 64)
    try Synthetic.writeFlowPairs(to: data, options: options)
    var config = try flowConfig(dataset: data, steps: 200)
    // Scored on the pairs it trains on: this checks that the loop fits flow; the main
    // job reports the error on held-out pairs.
    config.data.valSplit = "train"
    let run = root.appendingPathComponent("run")
    let trainer = try Trainer(config: config, runFolder: run)
    XCTAssertTrue(trainer.task is FlowEstimationTask)
    guard case .finished(200, let validation?) = try trainer.train() else { return XCTFail("not finished") }
    let epe = try XCTUnwrap(validation.metrics.first { $0.name == "EPE" }?.value)
    let zero = try XCTUnwrap(validation.metrics.first { $0.name == "zero-flow EPE" }?.value)
    print("flow training test: EPE \(epe) px, zero flow \(zero) px")
    XCTAssertLessThan(epe, 0.9 * zero, "EPE \(epe) against zero flow's \(zero)")
    XCTAssertTrue(validation.lowerIsBetter)
    XCTAssertEqual(trainer.loop.best, epe, "the best of one validation is its error")
    XCTAssertEqual(try RunLayout(run).manifest().task, .flow)
    // The run's weights are a flow network for `segkit flow` and the flow cache.
    let network = try NetworkFlow(run: RunLayout(run))
    XCTAssertNil(network.network.scaleClasses)

    var short = config
    short.schedule.trainingNumberOfSteps = 4
    let whole = root.appendingPathComponent("whole"), parts = root.appendingPathComponent("parts")
    _ = try Trainer(config: short, runFolder: whole).train()
    guard case .interrupted(2, _) = try Trainer(config: short, runFolder: parts).train(stopAfterSteps: 2) else { return XCTFail("not interrupted") }
    _ = try Trainer(resuming: parts).train()
    let a = try StateDict.load(contentsOf: RunLayout(whole).finalWeightsURL), b = try StateDict.load(contentsOf: RunLayout(parts).finalWeightsURL)
    for (name, tensor) in a { XCTAssertTrue(try tensor.allClose(b[name]!, rtol: 0, atol: 0), name) }
  }

  func testWarpPathTrainingImitatesTheSegmentationRun() throws {
    let data = root.appendingPathComponent("street")
    var options = Synthetic.StreetOptions()
    (options.trainSnippets, options.valSnippets, options.frames, options.annotatedFrame, options.width, options.height) = (2, 1, 5, 4, 128, 64)
    try Synthetic.writeStreet(to: data, options: options)
    var segmentation = TrainingConfig()
    try segmentation.apply(yaml: """
      dataset: cityscapes
      model: fcn32s_resnet18
      train_crop_size: [64, 128]
      train_batch_size: 2
      training_number_of_steps: 1
      val_split: ""
      threads: 2
      workers: 1
      """)
    segmentation.data.datasetDir = data.path
    try segmentation.validate()
    let segmentationRun = root.appendingPathComponent("segmentation")
    _ = try Trainer(config: segmentation, runFolder: segmentationRun).train()

    // Started from a flow run's weights, which have no scale field.
    let flowWeights = root.appendingPathComponent("flow.safetensors")
    try StateDict(try FlowNetS(widths: .thin).stateDict()).save(to: flowWeights)
    var config = TrainingConfig()
    try config.apply(yaml: """
      task: flow
      dataset: cityscapes
      model: flownets_thin
      max_key_distance: 2
      train_crop_size: [64, 128]
      train_batch_size: 2
      min_scale_factor: 1.0
      max_scale_factor: 1.0
      training_number_of_steps: 2
      optimizer: adam
      threads: 2
      workers: 1
      """)
    config.data.datasetDir = data.path
    config.flow.segmentationRun = segmentationRun.path
    config.initialization.initialCheckpoint = flowWeights.path
    try config.validate()
    let trainer = try Trainer(config: config)
    // Frames 1…4 of two snippets with their keys 1 and 2 back: 2 × (1 + 2 + 2 + 2).
    XCTAssertEqual(trainer.task.trainLoader.source.count, 14)
    guard case .finished(2, let validation?) = try trainer.train() else { return XCTFail("not finished") }
    XCTAssertEqual(validation.headline?.name, "warp agreement")
    XCTAssertTrue((0...100).contains(validation.headline?.value ?? -1), "\(validation.metrics)")
    XCTAssertEqual((trainer.task as? FlowEstimationTask)?.network.scaleClasses, 19, "a scale field per class of the segmentation run")

    config.flow.segmentationRun = nil
    XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("segmentation_run"), "\($0)") }
  }

  func testRefusedSettings() throws {
    var config = TrainingConfig()
    try config.apply(yaml: "task: flow\ndataset: flying_chairs\nmodel: unet_resnet18\n")
    XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("must be a flow network"), "\($0)") }
    config.model.name = "flownets_thin"
    config.input.trainCropSize = [96, 128]
    XCTAssertThrowsError(try config.validate()) { XCTAssertTrue("\($0)".contains("multiples of 64"), "\($0)") }
    var maskRNN = TrainingConfig()
    try maskRNN.apply(yaml: "task: foreground\nmodel: maskrnn_resnet18\nflow_method: flownets_thin\n")
    XCTAssertThrowsError(try maskRNN.validate()) { XCTAssertTrue("\($0)".contains("'flow_weights' must name the weights"), "\($0)") }
    var semantic = TrainingConfig()
    semantic.model.name = "flownet2s"
    XCTAssertThrowsError(try semantic.validate()) { XCTAssertTrue("\($0)".contains("must be flow for flownet2s"), "\($0)") }
  }
}
