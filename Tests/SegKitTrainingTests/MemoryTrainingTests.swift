import Foundation
import SegKitInference
@testable import SegKitTraining
import SegKitTestSupport
import XCTest

/// Task memory (XMem) through the one training loop: video clips and still-image
/// sequences, an exact resume, a run folder whose weights and settings `segkit vos
/// segment --method xmem` takes, and settings checked by key.
final class MemoryTrainingTests: XCTestCase {
  var root: URL!

  override func setUpWithError() throws { root = try Oracle.temporaryDirectory("segkit-memory-training") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  func memoryConfig(dataset: String, at data: URL, steps: Int) throws -> TrainingConfig {
    var config = TrainingConfig()
    try config.apply(yaml: """
      task: memory
      dataset: \(dataset)
      model: xmem
      train_crop_size: [48, 64]
      train_batch_size: 2
      num_frames: 4
      num_ref_frames: 2
      deep_update_prob: 0.5
      start_warm: 1
      end_warm: 3
      max_jump_values: [2, 3]
      max_jump_fractions: [0.5]
      optimizer: adamw
      base_learning_rate: 0.0001
      weight_decay: 0.05
      training_number_of_steps: \(steps)
      size: null
      mem_every: 2
      val_samples: 1
      val_interval: 0
      checkpoint_interval: 2
      threads: 2
      workers: 1
      """)
    config.data.datasetDir = data.path
    try config.validate()
    return config
  }

  func testVideoClipsTrainResumeExactlyAndSegment() throws {
    try SlowTest.skipInFastTier()
    let data = root.appendingPathComponent("davis")
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames, options.width, options.height) = (2, 1, 6, 64, 48)
    (options.objects, options.seed, options.writeFlow) = (2, 3, false)
    try Synthetic.writeVideo(to: data, options: options)
    let config = try memoryConfig(dataset: "davis2017", at: data, steps: 3)
    let whole = root.appendingPathComponent("whole"), parts = root.appendingPathComponent("parts")
    let trainer = try Trainer(config: config, runFolder: whole)
    XCTAssertTrue(trainer.task is MemoryTrainingTask)
    guard case .finished(3, let validation?) = try trainer.train() else { return XCTFail("not finished") }
    let meanJ = try XCTUnwrap(validation.headline?.value)
    XCTAssertTrue((0...1).contains(meanJ), "J \(meanJ)")
    XCTAssertTrue(validation.summary.contains("1 videos, 10 object-frames"), validation.summary)

    guard case .interrupted(2, _) = try Trainer(config: config, runFolder: parts).train(stopAfterSteps: 2) else { return XCTFail("not interrupted") }
    _ = try Trainer(resuming: parts).train()
    let a = try StateDict.load(contentsOf: RunLayout(whole).finalWeightsURL), b = try StateDict.load(contentsOf: RunLayout(parts).finalWeightsURL)
    XCTAssertEqual(a.names.count, b.names.count)
    for (name, tensor) in a { XCTAssertTrue(try tensor.allClose(b[name]!, rtol: 0, atol: 0), name) }

    // The run's weights are XMem's layout; its manifest keeps the inference settings.
    let manifest = try RunLayout(whole).manifest()
    XCTAssertEqual(manifest.task, .memory)
    var expected = XMemSettings()
    (expected.size, expected.memEvery) = (nil, 2)
    XCTAssertEqual(manifest.inference?.memory, expected)
    let network = try XMem.load(contentsOf: RunLayout(whole).finalWeightsURL)
    let segmenter = try XMemSegmenter(network: network, settings: expected)
    let video = try VideoDataset.davis2017(root: data, split: "val").sequences[0]
    let first = try segmenter.start(firstFrame: try ImageIO.read(video.frames[0].image), mask: try ImageIO.readLabel(video.frames[0].label!.url))
    XCTAssertEqual(first.pixels, try ImageIO.readLabel(video.frames[0].label!.url).pixels, "the first frame keeps its given mask")
    let next = try segmenter.next(try ImageIO.read(video.frames[1].image))
    XCTAssertEqual([next.width, next.height], [64, 48])
  }

  func testStillImagesMakeSequencesAndSettingsAreChecked() throws {
    let data = root.appendingPathComponent("voc")
    var options = Synthetic.SemanticOptions()
    (options.trainCount, options.valCount, options.width, options.height) = (4, 1, 64, 48)
    try Synthetic.writeSemantic(to: data, options: options)
    var config = try memoryConfig(dataset: "pascal_voc", at: data, steps: 1)
    config.memory.numFrames = 3
    let trainer = try Trainer(config: config)
    XCTAssertTrue(trainer.task.summary.contains("4 training images as clips of 3 frames"), trainer.task.summary)
    guard case .finished(1, nil) = try trainer.train() else { return XCTFail("a still-image run has no video to validate on") }

    for (override, expected) in [("model=osvos_resnet18", "'model' must be xmem"), ("end_warm=0", "'end_warm' must be above start_warm"),
                                 ("max_jump_fractions=[0.5, 0.6]", "'max_jump_fractions' must be one fewer"),
                                 ("top_k=0", "--top-k must be at least 1"), ("num_frames=1", "'num_frames' must be 2 to 64")] {
      var wrong = config
      try wrong.apply(overrides: [override])
      XCTAssertThrowsError(try wrong.validate(), override) { error in XCTAssertTrue("\(error)".contains(expected), "\(override): \(error)") }
    }
    XCTAssertThrowsError(try config.apply(overrides: ["localiser_features=layer3"])) { error in
      XCTAssertTrue("\(error)".contains("localiser_features"), "\(error)")
    }
  }
}
