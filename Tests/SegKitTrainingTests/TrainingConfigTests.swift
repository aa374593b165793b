import Foundation
import SegKitTestSupport
import SegKitTraining
import XCTest

final class TrainingConfigTests: XCTestCase {
  func message(_ body: () throws -> Void) -> String {
    do { try body() } catch { return "\(error)" }
    return "no error"
  }

  func testDefaultsAreValidAndUseDeepLabNames() throws {
    try TrainingConfig().validate()
    let keys = Set(TrainingConfig.keys)
    XCTAssertEqual(keys.count, TrainingConfig.keys.count, "duplicate keys")
    for key in [
      "dataset", "dataset_dir", "train_split", "val_split", "model", "num_classes", "output_stride", "atrous_rates",
      "train_crop_size", "train_batch_size", "training_number_of_steps", "epochs", "learning_policy",
      "base_learning_rate", "learning_power", "learning_rate_decay_factor", "learning_rate_decay_step", "momentum",
      "weight_decay", "optimizer", "slow_start_step", "slow_start_learning_rate", "fine_tune_batch_norm",
      "last_layer_gradient_multiplier", "top_k_percent_pixels", "hard_example_mining_step", "aux_loss_weight",
      "class_weights", "gradient_accumulation", "min_scale_factor", "max_scale_factor", "scale_factor_step_size",
      "initial_checkpoint", "initialize_last_layer", "last_layers_contain_logits_only", "seed", "device", "threads",
      "val_interval", "val_samples", "checkpoint_interval", "keep_checkpoints", "log_interval", "workers",
    ] {
      XCTAssertTrue(keys.contains(key), key)
    }
    XCTAssertTrue(TrainingConfig.settings.allSatisfy { !$0.help.isEmpty && !$0.type.isEmpty })
  }

  func testYAMLFileSetsEveryKindOfValue() throws {
    var config = TrainingConfig()
    try config.apply(yaml: """
      # a comment
      dataset: cityscapes
      num_classes: 19
      model: deeplabv3_resnet50
      output_stride: 8
      atrous_rates: [12, 24, 36]
      train_crop_size:
        - 769
        - 769
      base_learning_rate: 1e-2
      learning_policy: Step
      optimizer: adamw
      fine_tune_batch_norm: no
      class_weights: [1, 0.5, 2.0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
      initial_checkpoint: "/weights/r50 init.safetensors"
      dataset_dir: ~
      training_number_of_steps: 90_000
      """, source: "run.yaml")
    XCTAssertEqual(config.data.dataset, "cityscapes")
    XCTAssertEqual(config.data.numClasses, 19)
    XCTAssertEqual(config.model.outputStride, 8)
    XCTAssertEqual(config.model.atrousRates, [12, 24, 36])
    XCTAssertEqual(config.input.trainCropSize, [769, 769])
    XCTAssertEqual(config.schedule.baseLearningRate, 0.01)
    XCTAssertEqual(config.schedule.learningPolicy, .step)
    XCTAssertEqual(config.optimizer.kind, .adamw)
    XCTAssertFalse(config.initialization.fineTuneBatchNorm)
    XCTAssertEqual(config.semantic.classWeights?[1], 0.5)
    XCTAssertEqual(config.initialization.initialCheckpoint, "/weights/r50 init.safetensors")
    XCTAssertNil(config.data.datasetDir)
    XCTAssertEqual(config.schedule.trainingNumberOfSteps, 90000)
    try config.validate()
  }

  func testUnknownKeysAreNamedWithSuggestionsAndChangeNothing() throws {
    var config = TrainingConfig()
    let text = message {
      try config.apply(yaml: "train_batch_sise: 4\nlearning_rate: 0.1\ntf_initial_checkpoint: x\nzzz: 1\nseed: 5\n",
                       source: "run.yaml")
    }
    XCTAssertTrue(text.hasPrefix("run.yaml: unknown settings"), text)
    XCTAssertTrue(text.contains("'train_batch_sise' (did you mean 'train_batch_size'?)"), text)
    XCTAssertTrue(text.contains("'learning_rate' (did you mean 'base_learning_rate'?)"), text)
    XCTAssertTrue(text.contains("'tf_initial_checkpoint' (did you mean 'initial_checkpoint'?)"), text)
    XCTAssertTrue(text.contains("'zzz'"), text)
    XCTAssertEqual(config, TrainingConfig())

    let override = message { try config.apply(overrides: ["momentun=0.5"]) }
    XCTAssertTrue(override.contains("--set: unknown setting 'momentun' (did you mean 'momentum'?)"), override)
  }

  func testWrongTypesNameTheKeyTheLineAndTheType() throws {
    var config = TrainingConfig()
    let text = message { try config.apply(yaml: "seed: 1\ntrain_batch_size: eight\n", source: "run.yaml") }
    XCTAssertEqual(text, "run.yaml:2: 'train_batch_size' expects an integer, got 'eight'")
    XCTAssertEqual(config, TrainingConfig(), "nothing applied from a file with an error")
    XCTAssertTrue(message { try config.apply(yaml: "learning_policy: linear") }
      .contains("'learning_policy' expects one of poly, step, piecewise, cosine, got 'linear'"))
    XCTAssertTrue(message { try config.apply(yaml: "atrous_rates: [6, x]") }.contains("expects a list of integers or null"))
    XCTAssertTrue(message { try config.apply(yaml: "seed: 1\nseed: 2") }.contains("'seed' is set twice"))
    XCTAssertTrue(message { try config.apply(yaml: "- a\n- b") }.contains("expected a mapping"))
    XCTAssertTrue(message { try config.apply(yaml: "model: {a: 1}") }.contains("'model' expects a string, got a nested mapping"))
    XCTAssertTrue(message { try config.apply(yaml: "seed: [1") }.contains("not valid YAML"))
    XCTAssertTrue(message { try config.apply(contentsOf: URL(fileURLWithPath: "/nonexistent/run.yaml")) }
      .contains("/nonexistent/run.yaml"))
  }

  func testOverrides() throws {
    var config = TrainingConfig()
    try config.apply(overrides: [
      "atrous_rates=6,12,18", "train_crop_size=[321, 321]", "base_learning_rate=1e-3", "optimizer=Adam",
      "initial_checkpoint=/w/init.pth", "num_classes=21", "fine_tune_batch_norm=false", "dataset_dir=", "val_split=",
    ])
    XCTAssertEqual(config.model.atrousRates, [6, 12, 18])
    XCTAssertEqual(config.input.trainCropSize, [321, 321])
    XCTAssertEqual(config.schedule.baseLearningRate, 0.001)
    XCTAssertEqual(config.optimizer.kind, .adam)
    XCTAssertEqual(config.initialization.initialCheckpoint, "/w/init.pth")
    XCTAssertEqual(config.data.numClasses, 21)
    XCTAssertFalse(config.initialization.fineTuneBatchNorm)
    XCTAssertNil(config.data.datasetDir)
    XCTAssertEqual(config.data.valSplit, "", "empty text is the empty string for a plain string setting (no validation)")
    try config.apply(overrides: ["initial_checkpoint=null"])
    XCTAssertNil(config.initialization.initialCheckpoint)

    let before = config
    XCTAssertEqual(message { try config.apply(overrides: ["seed=3", "momentum=fast"]) },
                   "--set momentum=fast: 'momentum' expects a number, got 'fast'")
    XCTAssertEqual(config, before, "no override applied when one is wrong")
    XCTAssertTrue(message { try config.apply(overrides: ["seed"]) }.contains("expected key=value"))
  }

  func testValidationListsEveryProblem() throws {
    var config = TrainingConfig()
    try config.apply(overrides: [
      "output_stride=12", "train_crop_size=[513]", "momentum=1.5", "top_k_percent_pixels=0", "model=deeplabv3plus_resnet5",
      "num_classes=3", "class_weights=[1, 1]", "learning_policy=piecewise", "learning_rate_boundaries=[10, 5]",
      "learning_rate_values=[0.1]", "device=tpu",
    ])
    let text = message { try config.validate() }
    for expected in [
      "'output_stride' must be 8, 16 or 32, got 12", "'train_crop_size' must be [height, width]",
      "'momentum' must be in [0, 1), got 1.5", "'top_k_percent_pixels' must be in (0, 1]",
      "'model' names no known model: 'deeplabv3plus_resnet5' (did you mean 'deeplabv3plus_resnet50'",
      "'class_weights' must hold one weight per class (3)", "'learning_rate_values' must hold one rate more",
      "'learning_rate_boundaries' must increase", "'device' unknown device 'tpu'",
    ] {
      XCTAssertTrue(text.contains(expected), "missing \(expected) in\n\(text)")
    }
  }

  func testYAMLRoundTripAndHash() throws {
    var config = TrainingConfig()
    try config.apply(overrides: [
      "dataset=folder", "dataset_dir=/data/my set: v2", "initial_checkpoint=true", "base_learning_rate=1e-5",
      "atrous_rates=[12, 24, 36]", "class_weights=[0.5, 2]", "eval_scales=[0.5, 1.0, 1.75]", "optimizer=adamw",
      "epochs=30", "train_logdir=null",
    ])
    let yaml = config.yaml()
    XCTAssertTrue(yaml.contains("base_learning_rate: 1.0e-05\n"), yaml)
    XCTAssertTrue(yaml.contains("initial_checkpoint: \"true\"\n"), yaml)
    var back = TrainingConfig()
    try back.apply(yaml: yaml)
    XCTAssertEqual(back, config)
    XCTAssertEqual(back.hash, config.hash)
    XCTAssertEqual(config.hash.count, 16)
    back.run.seed += 1
    XCTAssertNotEqual(back.hash, config.hash)

    // PyYAML (YAML 1.1) reads the same values with the same types.
    let folder = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let file = folder.appendingPathComponent("config.yaml")
    try yaml.write(to: file, atomically: true, encoding: .utf8)
    let output = try Oracle.run("""
      import json, sys, yaml
      c = yaml.safe_load(open(sys.argv[1]))
      print(json.dumps({k: [type(v).__name__, v] for k, v in c.items()}))
      """, arguments: [file.path])
    let python = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: [Any]])
    XCTAssertEqual(Set(python.keys), Set(TrainingConfig.keys(for: .semantic)))
    XCTAssertEqual(python["base_learning_rate"]?.first as? String, "float")
    XCTAssertEqual(python["base_learning_rate"]?.last as? Double, 1e-5)
    XCTAssertEqual(python["dataset_dir"]?.last as? String, "/data/my set: v2")
    XCTAssertEqual(python["initial_checkpoint"]?.last as? String, "true")
    XCTAssertEqual(python["train_logdir"]?.first as? String, "NoneType")
    XCTAssertEqual(python["epochs"]?.last as? Int, 30)
    XCTAssertEqual(python["fine_tune_batch_norm"]?.first as? String, "bool")
  }

  func testResolveFromFileAndOverrides() throws {
    let folder = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: folder) }
    let file = folder.appendingPathComponent("run.yaml")
    try "train_batch_size: 4\nseed: 1\n".write(to: file, atomically: true, encoding: .utf8)
    let config = try TrainingConfig.resolve(file: file, overrides: ["seed=9"])
    XCTAssertEqual(config.input.trainBatchSize, 4)
    XCTAssertEqual(config.run.seed, 9)
    XCTAssertTrue(message { _ = try TrainingConfig.resolve(file: file, overrides: ["train_batch_size=0"]) }
      .contains("'train_batch_size' must be at least 1, got 0"))
  }

  func testDerivedScheduleOptimizerAndSteps() throws {
    var config = TrainingConfig()
    try config.apply(overrides: ["base_learning_rate=0.01", "slow_start_step=5", "slow_start_learning_rate=0.001"])
    let poly = try config.learningRateSchedule(totalSteps: 100)
    XCTAssertEqual(poly(0), 0.001)
    XCTAssertEqual(poly(5), 0.01 * pow(0.95, 0.9), accuracy: 1e-15)
    XCTAssertEqual(poly(100), 0)

    try config.apply(overrides: ["learning_policy=piecewise", "learning_rate_boundaries=[10]",
                                 "learning_rate_values=[0.1, 0.01]", "slow_start_step=0"])
    let piecewise = try config.learningRateSchedule(totalSteps: 100)
    XCTAssertEqual([piecewise(10), piecewise(11)], [0.1, 0.01])

    XCTAssertEqual(config.totalSteps(trainingSamples: 1000), config.schedule.trainingNumberOfSteps)
    try config.apply(overrides: ["epochs=3", "train_batch_size=8", "gradient_accumulation=2"])
    XCTAssertEqual(config.totalSteps(trainingSamples: 1000), 3 * 62)

    let parameters = [try Tensor.zeros([2]).requiresGrad(true)]
    try config.apply(overrides: ["optimizer=adamw", "weight_decay=0.05"])
    let adamw = try XCTUnwrap(config.makeOptimizer([ParameterGroup(parameters: parameters)]) as? AdamW)
    XCTAssertEqual(adamw.weightDecay, 0.05)
    try config.apply(overrides: ["optimizer=sgd", "momentum=0.8"])
    XCTAssertEqual((try config.makeOptimizer([ParameterGroup(parameters: parameters)]) as? SGD)?.momentum, 0.8)
    XCTAssertEqual(try config.resolvedDevice(), Device.cudaDeviceCount > 0 ? .cuda(0) : .cpu)
  }
}

extension TrainingConfigTests {
  /// `task` selects which task-scoped keys a configuration takes: a key of the other
  /// task is an error naming its task, with the closest key of this one, and config.yaml
  /// holds the common keys and this task's own.
  func testTaskScopedKeys() throws {
    var config = TrainingConfig()
    try config.apply(yaml: "task: foreground\nbalanced_loss_normalization: per_pixel\nloss: balanced_bce\n")
    XCTAssertEqual(config.task, .foreground)
    XCTAssertEqual(config.foreground.balancedLossNormalization, .perPixel)
    try config.validate()

    let text = message { try config.apply(yaml: "top_k_percent_pixels: 0.25\n", source: "run.yaml") }
    XCTAssertTrue(text.contains("'top_k_percent_pixels' (a setting of task semantic, and this configuration's task is foreground)"), text)
    XCTAssertEqual(config.semantic.topKPercentPixels, 1, "nothing applied")
    // The task key is read first wherever it stands, from a file or from --set.
    var other = TrainingConfig()
    XCTAssertTrue(message { try other.apply(yaml: "balanced_loss_normalization: sum\ntask: semantic\n") }
      .contains("a setting of task foreground"))
    try other.apply(overrides: ["balanced_loss_normalization=per_image", "task=foreground"])
    XCTAssertEqual(other.foreground.balancedLossNormalization, .perImage)

    let yaml = config.yaml()
    XCTAssertTrue(yaml.contains("balanced_loss_normalization: per_pixel") && yaml.contains("task: foreground"), yaml)
    XCTAssertFalse(yaml.contains("top_k_percent_pixels") || yaml.contains("class_weights"), yaml)
    var back = TrainingConfig()
    try back.apply(yaml: yaml)
    XCTAssertEqual(back, config)
    XCTAssertFalse(TrainingConfig().yaml().contains("balanced_loss_normalization"))

    // A loss of the other kind of model is a validation error.
    var semantic = TrainingConfig()
    semantic.loss.kind = .balancedBCE
    XCTAssertTrue(message { try semantic.validate() }.contains("'loss' balanced_bce needs a one-channel model"))
    config.loss.kind = .lovasz
    XCTAssertTrue(message { try config.validate() }.contains("'loss' lovasz is a multi-class loss"))
    semantic.loss.kind = .dice
    semantic.optimizer.gradientClipNorm = 0
    XCTAssertTrue(message { try semantic.validate() }.contains("'gradient_clip_norm' must be positive"))
  }

  /// Hostile values: upper bounds that name the key and the limit, YAML nested past
  /// the limit refused before the parser sees it (from a file and from --set), and an
  /// oversized file refused before it is read.
  func testLimitsAndNesting() throws {
    var config = TrainingConfig()
    try config.apply(overrides: [
      "num_classes=50000", "train_crop_size=[2147483648, 5]", "scale_factor_step_size=1e-300", "max_scale_factor=1e300",
      "epochs=999999999999", "gradient_accumulation=100000000", "training_number_of_steps=9223372036854775807",
      "eval_scales=[1, 1e300]", "workers=100000", "ignore_label=300",
    ])
    let problems = message { try config.validate() }
    for expected in ["'num_classes' must be at most 256", "'train_crop_size' must be at most 16384", "'max_scale_factor' must be at most 16",
                     "'scale_factor_step_size' must leave at most 100000 scales", "'epochs' must be at most 1000000",
                     "'gradient_accumulation' must be at most 4096", "'training_number_of_steps' must be at most 1000000000",
                     "'eval_scales' must be at most 16", "'workers' must be at most 256", "'ignore_label' must be at most 255"] {
      XCTAssertTrue(problems.contains(expected), "\(expected) in \(problems)")
    }

    let deepFlow = "a: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
    XCTAssertTrue(message { try config.apply(yaml: deepFlow, source: "deep.yaml") }.contains("deep.yaml: nested deeper than 64 levels"))
    let deepBlock = (0..<200).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n")
    XCTAssertTrue(message { try config.apply(yaml: deepBlock, source: "block.yaml") }.contains("nested deeper than 64"))
    let deepSequence = "a: " + String(repeating: "- ", count: 1000) + "x"
    XCTAssertTrue(message { try config.apply(yaml: "a:\n" + deepSequence.dropFirst(3), source: "dash.yaml") }.contains("nested deeper than 64"))
    XCTAssertTrue(message { try config.apply(overrides: ["atrous_rates=" + String(repeating: "[", count: 5000)]) }
      .contains("nested deeper than 64"))
    // An ordinary config passes the check.
    var ordinary = TrainingConfig()
    try ordinary.apply(yaml: "train_crop_size: [96, 96]\natrous_rates:\n  - 6\n  - 12\n", source: "ok.yaml")
    XCTAssertEqual(ordinary.model.atrousRates, [6, 12])

    let folder = try Oracle.temporaryDirectory("segkit-config-limits")
    defer { try? FileManager.default.removeItem(at: folder) }
    let big = folder.appendingPathComponent("big.yaml")
    try Data(repeating: UInt8(ascii: "#"), count: TrainingConfig.maximumConfigBytes + 1).write(to: big)
    XCTAssertTrue(message { try config.apply(contentsOf: big) }.contains("over the limit of 1048576"))
  }
}
