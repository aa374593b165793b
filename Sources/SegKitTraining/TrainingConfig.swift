import Foundation
import Yams

/// Every setting of a training run, with DeepLab's flag names as YAML keys where
/// DeepLab has the setting (`base_learning_rate`, `train_crop_size`, …).
///
/// A configuration is resolved in layers: the defaults here, then a YAML file (a flat
/// mapping of `key: value`), then `--set key=value` overrides, then `validate()`.
/// Unknown keys and values of the wrong type are errors naming the key (and the file
/// and line); `yaml()` writes the resolved configuration back, every key included.
public struct TrainingConfig: Equatable, Sendable {
  public enum LearningPolicy: String, CaseIterable, Sendable { case poly, step, piecewise, cosine }
  public enum OptimizerKind: String, CaseIterable, Sendable { case sgd, adam, adamw }

  // Dataset
  public var dataset = "pascal_voc"
  public var datasetDir: String? = nil
  public var trainSplit = "train"
  public var valSplit = "val"
  public var numClasses: Int? = nil
  public var ignoreLabel = 255

  // Model
  public var model = "deeplabv3plus_mobilenet_v2"
  public var outputStride: Int? = nil
  public var atrousRates: [Int]? = nil
  public var auxiliaryHead: Bool? = nil
  public var separableConv = false

  // Input and augmentation
  public var trainCropSize = [513, 513]
  public var trainBatchSize = 8
  public var minScaleFactor = 0.5
  public var maxScaleFactor = 2.0
  public var scaleFactorStepSize = 0.25
  public var flipProbability = 0.5
  public var shuffle = true

  // Length of training
  public var trainingNumberOfSteps = 30000
  public var epochs: Int? = nil

  // Learning rate
  public var learningPolicy = LearningPolicy.poly
  public var baseLearningRate = 0.0001
  public var learningPower = 0.9
  public var endLearningRate = 0.0
  public var learningRateDecayFactor = 0.1
  public var learningRateDecayStep = 2000
  public var learningRateBoundaries: [Int] = []
  public var learningRateValues: [Double] = []
  public var slowStartStep = 0
  public var slowStartLearningRate = 1e-4
  public var warmupSteps = 0
  public var warmupStartFactor = 0.0

  // Optimizer
  public var optimizer = OptimizerKind.sgd
  public var momentum = 0.9
  public var nesterov = false
  public var weightDecay = 0.00004
  public var adamBeta1 = 0.9
  public var adamBeta2 = 0.999
  public var adamEpsilon = 1e-8
  public var gradientAccumulation = 1
  public var noDecayOnBiasAndNorm = false

  // Initialisation and fine-tuning
  public var initialCheckpoint: String? = nil
  public var initializeLastLayer = true
  public var lastLayersContainLogitsOnly = false
  public var fineTuneBatchNorm = true
  public var lastLayerGradientMultiplier = 1.0

  // Loss
  public var topKPercentPixels = 1.0
  public var hardExampleMiningStep = 0
  public var auxLossWeight = 0.4
  public var classWeights: [Double]? = nil
  public var upsampleLogits = true

  // Evaluation
  public var evalCropSize: [Int]? = nil
  public var evalBatchSize = 1
  public var evalScales = [1.0]
  public var addFlippedImages = false

  // Run
  public var trainLogdir: String? = nil
  public var seed = 0
  public var device = "auto"
  public var threads = 0
  public var workers = 2
  public var logInterval = 10
  public var valInterval = 1000
  public var valSamples = 0
  public var checkpointInterval = 1000
  public var keepCheckpoints = 5
  public var saveSummariesImages = true

  public init() {}

  // MARK: The settings

  /// One setting as the command line and the documentation show it.
  public struct SettingInfo: Sendable {
    public let key: String
    public let section: String
    /// What the value must be: "an integer", "a list of numbers", "one of poly, step, …".
    public let type: String
    public let help: String
    /// The default as YAML text.
    public let defaultValue: String
  }

  /// Every setting, in the order `yaml()` writes them.
  public static var settings: [SettingInfo] {
    let defaults = TrainingConfig()
    return table.map { SettingInfo(key: $0.key, section: $0.section, type: $0.type, help: $0.help, defaultValue: $0.read(defaults)) }
  }

  public static var keys: [String] { table.map(\.key) }

  struct Setting {
    let key: String
    let section: String
    let type: String
    let help: String
    let read: (TrainingConfig) -> String
    /// False when the node is not of the setting's type.
    let assign: (inout TrainingConfig, Node) -> Bool
    /// String settings take command-line text as it is, not as YAML (paths may hold ": " or "#").
    let takesRawText: Bool

    init<V: ConfigValue>(_ key: String, _ section: String, _ path: WritableKeyPath<TrainingConfig, V>, _ help: String) {
      self.key = key
      self.section = section
      self.help = help
      type = V.typeDescription
      takesRawText = V.self == String.self || V.self == String?.self
      read = { $0[keyPath: path].yamlText }
      assign = { config, node in
        guard let value = V(configNode: node) else { return false }
        config[keyPath: path] = value
        return true
      }
    }
  }

  static let table: [Setting] = [
    Setting("dataset", "dataset", \.dataset, "dataset name (pascal_voc, cityscapes, ade20k, camvid, davis, folder, …)"),
    Setting("dataset_dir", "dataset", \.datasetDir, "dataset root folder (required)"),
    Setting("train_split", "dataset", \.trainSplit, "split to train on"),
    Setting("val_split", "dataset", \.valSplit, "split to validate on"),
    Setting("num_classes", "dataset", \.numClasses, "number of classes; null: the dataset's"),
    Setting("ignore_label", "dataset", \.ignoreLabel, "label value of void pixels, ignored by the loss and the metrics"),

    Setting("model", "model", \.model, "model name, DECODER_ENCODER (`segkit models` lists them)"),
    Setting("output_stride", "model", \.outputStride, "input/feature resolution ratio, 8, 16 or 32; null: the model's"),
    Setting("atrous_rates", "model", \.atrousRates, "ASPP dilation rates; null: [6, 12, 18] at stride 16, [12, 24, 36] at 8"),
    Setting("auxiliary_head", "model", \.auxiliaryHead, "add an auxiliary FCN head; null: the model's default"),
    Setting("separable_conv", "model", \.separableConv, "depthwise-separable convolutions in ASPP and the decoder"),

    Setting("train_crop_size", "input", \.trainCropSize, "training crop [height, width]"),
    Setting("train_batch_size", "input", \.trainBatchSize, "images per batch"),
    Setting("min_scale_factor", "input", \.minScaleFactor, "smallest random rescaling of training images"),
    Setting("max_scale_factor", "input", \.maxScaleFactor, "largest random rescaling of training images"),
    Setting("scale_factor_step_size", "input", \.scaleFactorStepSize, "rescaling step between min and max; 0: any value"),
    Setting("flip_probability", "input", \.flipProbability, "probability of a left-right flip of a training image"),
    Setting("shuffle", "input", \.shuffle, "shuffle the training split each epoch (false: file order)"),

    Setting("training_number_of_steps", "length", \.trainingNumberOfSteps, "optimizer steps to train (unless epochs is set)"),
    Setting("epochs", "length", \.epochs, "passes over the training split; overrides training_number_of_steps"),

    Setting("learning_policy", "learning rate", \.learningPolicy, "learning-rate decay"),
    Setting("base_learning_rate", "learning rate", \.baseLearningRate, "initial learning rate"),
    Setting("learning_power", "learning rate", \.learningPower, "exponent of the poly policy"),
    Setting("end_learning_rate", "learning rate", \.endLearningRate, "final rate of the poly and cosine policies"),
    Setting("learning_rate_decay_factor", "learning rate", \.learningRateDecayFactor, "step policy: multiplier at each decay"),
    Setting("learning_rate_decay_step", "learning rate", \.learningRateDecayStep, "step policy: steps between decays"),
    Setting("learning_rate_boundaries", "learning rate", \.learningRateBoundaries, "piecewise policy: steps where the rate changes"),
    Setting("learning_rate_values", "learning rate", \.learningRateValues, "piecewise policy: rates, one more than boundaries"),
    Setting("slow_start_step", "learning rate", \.slowStartStep, "steps trained at slow_start_learning_rate first"),
    Setting("slow_start_learning_rate", "learning rate", \.slowStartLearningRate, "learning rate during slow start"),
    Setting("warmup_steps", "learning rate", \.warmupSteps, "steps of linear warm-up of the decayed rate"),
    Setting("warmup_start_factor", "learning rate", \.warmupStartFactor, "fraction of the rate at the start of warm-up"),

    Setting("optimizer", "optimizer", \.optimizer, "optimizer"),
    Setting("momentum", "optimizer", \.momentum, "SGD momentum"),
    Setting("nesterov", "optimizer", \.nesterov, "Nesterov momentum (SGD)"),
    Setting("weight_decay", "optimizer", \.weightDecay, "weight decay (L2 for SGD and Adam, decoupled for AdamW)"),
    Setting("adam_beta1", "optimizer", \.adamBeta1, "Adam's first-moment decay"),
    Setting("adam_beta2", "optimizer", \.adamBeta2, "Adam's second-moment decay"),
    Setting("adam_epsilon", "optimizer", \.adamEpsilon, "Adam's epsilon"),
    Setting("gradient_accumulation", "optimizer", \.gradientAccumulation, "batches whose gradients make one optimizer step"),
    Setting("no_decay_on_bias_and_norm", "optimizer", \.noDecayOnBiasAndNorm, "no weight decay on biases and normalisation parameters"),

    Setting("initial_checkpoint", "initialisation", \.initialCheckpoint, "weights to start from (DeepLab's tf_initial_checkpoint)"),
    Setting("initialize_last_layer", "initialisation", \.initializeLastLayer, "also load the last layers from initial_checkpoint"),
    Setting("last_layers_contain_logits_only", "initialisation", \.lastLayersContainLogitsOnly,
            "the last layers are the logits only (else also ASPP, image pooling and decoder)"),
    Setting("fine_tune_batch_norm", "initialisation", \.fineTuneBatchNorm,
            "update batch-norm statistics (false: normalise with the running ones and keep them; scale and offset still train, as in DeepLab)"),
    Setting("last_layer_gradient_multiplier", "initialisation", \.lastLayerGradientMultiplier,
            "learning-rate multiplier of the last layers"),

    Setting("top_k_percent_pixels", "loss", \.topKPercentPixels, "fraction of hardest pixels kept in the loss"),
    Setting("hard_example_mining_step", "loss", \.hardExampleMiningStep, "steps over which the kept fraction falls from 1 to top_k_percent_pixels"),
    Setting("aux_loss_weight", "loss", \.auxLossWeight, "weight of the auxiliary head's loss"),
    Setting("class_weights", "loss", \.classWeights, "per-class loss weights; null: all 1"),
    Setting("upsample_logits", "loss", \.upsampleLogits, "upsample logits to the label size (else downsample the labels)"),

    Setting("eval_crop_size", "evaluation", \.evalCropSize, "evaluation crop [height, width]; null: whole images"),
    Setting("eval_batch_size", "evaluation", \.evalBatchSize, "images per evaluation batch"),
    Setting("eval_scales", "evaluation", \.evalScales, "input scales averaged at evaluation"),
    Setting("add_flipped_images", "evaluation", \.addFlippedImages, "also evaluate left-right flipped inputs"),

    Setting("train_logdir", "run", \.trainLogdir, "run folder; null: chosen by the command"),
    Setting("seed", "run", \.seed, "random seed of initialisation, shuffling and augmentation"),
    Setting("device", "run", \.device, "auto, cpu, cuda, cuda:N or mps"),
    Setting("threads", "run", \.threads, "CPU threads for libtorch; 0: its default"),
    Setting("workers", "run", \.workers, "data-loading threads"),
    Setting("log_interval", "run", \.logInterval, "steps between log lines and TensorBoard scalars"),
    Setting("val_interval", "run", \.valInterval, "steps between validations; 0: at the end only"),
    Setting("val_samples", "run", \.valSamples, "validation images used; 0: the whole split"),
    Setting("checkpoint_interval", "run", \.checkpointInterval, "steps between checkpoints"),
    Setting("keep_checkpoints", "run", \.keepCheckpoints, "checkpoints kept, newest first; 0: all"),
    Setting("save_summaries_images", "run", \.saveSummariesImages, "log input, prediction and ground-truth images to TensorBoard"),
  ]

  /// DeepLab flag names that SegKit spells differently, for "did you mean".
  static let aliases = [
    "tf_initial_checkpoint": "initial_checkpoint", "log_steps": "log_interval", "crop_size": "train_crop_size",
    "batch_size": "train_batch_size", "num_steps": "training_number_of_steps", "learning_rate": "base_learning_rate",
    "lr": "base_learning_rate", "aux_weight": "aux_loss_weight", "model_variant": "model",
  ]

  // MARK: Loading

  /// Defaults, then the file (if any), then `key=value` overrides, then validation.
  public static func resolve(file: URL?, overrides: [String] = []) throws -> TrainingConfig {
    var config = TrainingConfig()
    if let file { try config.apply(contentsOf: file) }
    try config.apply(overrides: overrides)
    try config.validate()
    return config
  }

  /// Applies the settings of a YAML file over the current values.
  public mutating func apply(contentsOf url: URL) throws {
    let text: String
    do {
      text = try String(contentsOf: url, encoding: .utf8)
    } catch {
      throw TrainingError("cannot read the configuration \(url.path): \(RunFolder.reason(error))")
    }
    try apply(yaml: text, source: url.path)
  }

  /// Applies the settings of YAML text (a flat mapping) over the current values;
  /// `source` names it in errors. Nothing changes unless every setting is valid.
  public mutating func apply(yaml text: String, source: String = "configuration") throws {
    let root: Node?
    do {
      root = try Yams.compose(yaml: text)
    } catch {
      throw TrainingError("\(source): not valid YAML: \(error)")
    }
    guard let root else { return }  // an empty file changes nothing
    guard case .mapping(let mapping) = root else {
      throw TrainingError("\(source): expected a mapping of settings (key: value), not \(Self.kind(of: root))")
    }
    var pairs: [(key: String, value: Node, line: Int?)] = []
    for (keyNode, value) in mapping {
      guard case .scalar(let key) = keyNode else {
        throw TrainingError("\(Self.place(source, keyNode)): setting names must be plain keys")
      }
      if let earlier = pairs.first(where: { $0.key == key.string }) {
        let line = earlier.line.map { " (first on line \($0))" } ?? ""
        throw TrainingError("\(Self.place(source, keyNode)): '\(key.string)' is set twice\(line)")
      }
      pairs.append((key.string, value, keyNode.mark?.line))
    }
    var updated = self
    try Self.rejectUnknown(pairs.map(\.key), source: source)
    for pair in pairs {
      try updated.assign(pair.key, pair.value, place: Self.place(source, pair.value))
    }
    self = updated
  }

  /// Applies `key=value` overrides (the `--set` arguments). A value is read as YAML
  /// (`[513, 513]`, `null`, `1e-3`); lists may also be written `6,12,18`.
  public mutating func apply(overrides: [String]) throws {
    var parsed: [(key: String, value: String)] = []
    for text in overrides {
      guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
        throw TrainingError("--set \(text): expected key=value")
      }
      parsed.append((text[..<equals].trimmingCharacters(in: .whitespaces),
                     String(text[text.index(after: equals)...]).trimmingCharacters(in: .whitespaces)))
    }
    try Self.rejectUnknown(parsed.map(\.key), source: "--set")
    var updated = self
    for (key, value) in parsed { try updated.set(key, to: value) }
    self = updated
  }

  /// Sets one setting from its text, as `--set key=value` or a `--key value` flag.
  public mutating func set(_ key: String, to value: String) throws {
    try Self.rejectUnknown([key], source: "--set")
    let place = "--set \(key)=\(value)"
    guard let setting = Self.table.first(where: { $0.key == key }) else { return }
    if setting.takesRawText {
      try assign(setting, Node(value, .implicit, .plain), place: place)
      return
    }
    let node: Node
    do {
      node = try Yams.compose(yaml: value) ?? Node("", .implicit, .plain)
    } catch {
      throw TrainingError("\(place): '\(key)' expects \(setting.type), got text that is not a YAML value (\(error))")
    }
    try assign(setting, node, place: place)
  }

  private mutating func assign(_ key: String, _ node: Node, place: String) throws {
    guard let setting = Self.table.first(where: { $0.key == key }) else { return }
    try assign(setting, node, place: place)
  }

  private mutating func assign(_ setting: Setting, _ node: Node, place: String) throws {
    let key = setting.key
    guard setting.assign(&self, node) else {
      throw TrainingError("\(place): '\(key)' expects \(setting.type), got \(Self.describe(node))")
    }
  }

  private static func rejectUnknown(_ keys: [String], source: String) throws {
    let unknown = keys.filter { key in !table.contains { $0.key == key } }
    guard !unknown.isEmpty else { return }
    let described = unknown.map { key -> String in
      let suggestion = suggestion(for: key).map { " (did you mean '\($0)'?)" } ?? ""
      return "'\(key)'\(suggestion)"
    }
    let noun = unknown.count == 1 ? "setting" : "settings"
    throw TrainingError("\(source): unknown \(noun) \(described.joined(separator: ", ")); `segkit train --help` lists them all")
  }

  /// The known key closest to `key`: an alias, or one within a few edits.
  static func suggestion(for key: String) -> String? {
    let query = key.lowercased().replacingOccurrences(of: "-", with: "_")
    if let alias = aliases[query] { return alias }
    if keys.contains(query) { return query }
    let scored = keys.map { ($0, Spelling.editDistance(query, $0)) }.min { ($0.1, $0.0) < ($1.1, $1.0) }
    guard let (best, distance) = scored, distance <= max(2, query.count / 3) else { return nil }
    return best
  }

  private static func place(_ source: String, _ node: Node) -> String {
    guard let line = node.mark?.line else { return source }
    return "\(source):\(line)"
  }

  private static func kind(of node: Node) -> String {
    switch node {
    case .scalar: return "a single value"
    case .sequence: return "a list"
    case .mapping: return "a nested mapping"
    }
  }

  private static func describe(_ node: Node) -> String {
    switch node {
    case .scalar(let scalar): return "'\(scalar.string)'"
    default: return kind(of: node)
    }
  }

  // MARK: Validation

  /// Checks ranges and consistency; every problem is listed in one error.
  public func validate() throws {
    var problems: [String] = []
    func require(_ condition: Bool, _ key: String, _ rule: String, _ value: String) {
      if !condition { problems.append("'\(key)' \(rule), got \(value)") }
    }
    require(!dataset.isEmpty, "dataset", "must name a dataset", "nothing")
    require(!trainSplit.isEmpty, "train_split", "must name a split", "nothing")
    if let numClasses { require(numClasses >= 1, "num_classes", "must be at least 1", "\(numClasses)") }
    if let numClasses, (0..<numClasses).contains(ignoreLabel) {
      problems.append("'ignore_label' \(ignoreLabel) is one of the \(numClasses) classes; void needs a value outside [0, \(numClasses))")
    }
    require(ignoreLabel >= 0, "ignore_label", "must be non-negative", "\(ignoreLabel)")
    if !ModelZoo.names.contains(model) {
      let close = ModelZoo.closeMatches(to: model, limit: 3)
      let hint = close.isEmpty ? "" : " (did you mean \(close.map { "'\($0)'" }.joined(separator: ", "))?)"
      problems.append("'model' names no known model: '\(model)'\(hint); `segkit models` lists them")
    }
    if let outputStride { require([8, 16, 32].contains(outputStride), "output_stride", "must be 8, 16 or 32", "\(outputStride)") }
    if let atrousRates {
      require(!atrousRates.isEmpty && atrousRates.allSatisfy { $0 >= 1 }, "atrous_rates", "must be positive rates", "\(atrousRates)")
    }
    func size(_ value: [Int], _ key: String) {
      require(value.count == 2 && value.allSatisfy { $0 >= 1 }, key, "must be [height, width], both positive", "\(value)")
    }
    size(trainCropSize, "train_crop_size")
    if let evalCropSize { size(evalCropSize, "eval_crop_size") }
    require(trainBatchSize >= 1, "train_batch_size", "must be at least 1", "\(trainBatchSize)")
    require(minScaleFactor > 0, "min_scale_factor", "must be positive", "\(minScaleFactor)")
    require(maxScaleFactor >= minScaleFactor, "max_scale_factor", "must be at least min_scale_factor (\(minScaleFactor))", "\(maxScaleFactor)")
    require(scaleFactorStepSize >= 0, "scale_factor_step_size", "must be non-negative", "\(scaleFactorStepSize)")
    require((0...1).contains(flipProbability), "flip_probability", "must be in [0, 1]", "\(flipProbability)")
    require(trainingNumberOfSteps >= 1, "training_number_of_steps", "must be at least 1", "\(trainingNumberOfSteps)")
    if let epochs { require(epochs >= 1, "epochs", "must be at least 1", "\(epochs)") }

    require(baseLearningRate > 0, "base_learning_rate", "must be positive", "\(baseLearningRate)")
    require(learningPower > 0, "learning_power", "must be positive", "\(learningPower)")
    require(endLearningRate >= 0, "end_learning_rate", "must be non-negative", "\(endLearningRate)")
    require(learningRateDecayFactor > 0, "learning_rate_decay_factor", "must be positive", "\(learningRateDecayFactor)")
    require(learningRateDecayStep >= 1, "learning_rate_decay_step", "must be at least 1", "\(learningRateDecayStep)")
    if learningPolicy == .piecewise {
      require(learningRateValues.count == learningRateBoundaries.count + 1, "learning_rate_values",
              "must hold one rate more than learning_rate_boundaries (\(learningRateBoundaries.count))",
              "\(learningRateValues.count) rates")
      require(zip(learningRateBoundaries, learningRateBoundaries.dropFirst()).allSatisfy { $0 < $1 },
              "learning_rate_boundaries", "must increase", "\(learningRateBoundaries)")
      require(learningRateValues.allSatisfy { $0 >= 0 }, "learning_rate_values", "must be non-negative", "\(learningRateValues)")
    }
    require(slowStartStep >= 0, "slow_start_step", "must be non-negative", "\(slowStartStep)")
    require(slowStartLearningRate >= 0, "slow_start_learning_rate", "must be non-negative", "\(slowStartLearningRate)")
    require(warmupSteps >= 0, "warmup_steps", "must be non-negative", "\(warmupSteps)")
    require((0...1).contains(warmupStartFactor), "warmup_start_factor", "must be in [0, 1]", "\(warmupStartFactor)")

    require((0..<1).contains(momentum), "momentum", "must be in [0, 1)", "\(momentum)")
    require(!nesterov || optimizer != .sgd || momentum > 0, "nesterov", "needs a positive momentum", "momentum \(momentum)")
    require(weightDecay >= 0, "weight_decay", "must be non-negative", "\(weightDecay)")
    require((0..<1).contains(adamBeta1), "adam_beta1", "must be in [0, 1)", "\(adamBeta1)")
    require((0..<1).contains(adamBeta2), "adam_beta2", "must be in [0, 1)", "\(adamBeta2)")
    require(adamEpsilon >= 0, "adam_epsilon", "must be non-negative", "\(adamEpsilon)")
    require(gradientAccumulation >= 1, "gradient_accumulation", "must be at least 1", "\(gradientAccumulation)")
    require(lastLayerGradientMultiplier >= 0, "last_layer_gradient_multiplier", "must be non-negative", "\(lastLayerGradientMultiplier)")

    require(topKPercentPixels > 0 && topKPercentPixels <= 1, "top_k_percent_pixels", "must be in (0, 1]", "\(topKPercentPixels)")
    require(hardExampleMiningStep >= 0, "hard_example_mining_step", "must be non-negative", "\(hardExampleMiningStep)")
    require(auxLossWeight >= 0, "aux_loss_weight", "must be non-negative", "\(auxLossWeight)")
    if let classWeights {
      require(classWeights.allSatisfy { $0 >= 0 }, "class_weights", "must be non-negative", "\(classWeights)")
      if let numClasses {
        require(classWeights.count == numClasses, "class_weights", "must hold one weight per class (\(numClasses))",
                "\(classWeights.count) weights")
      }
    }

    require(evalBatchSize >= 1, "eval_batch_size", "must be at least 1", "\(evalBatchSize)")
    require(!evalScales.isEmpty && evalScales.allSatisfy { $0 > 0 }, "eval_scales", "must be positive scales", "\(evalScales)")

    require(seed >= 0, "seed", "must be non-negative", "\(seed)")
    if device != "auto" {
      do { _ = try Device(parsing: device) } catch { problems.append("'device' \(error)") }
    }
    for (key, value) in [("threads", threads), ("workers", workers), ("val_interval", valInterval),
                         ("val_samples", valSamples), ("keep_checkpoints", keepCheckpoints)] {
      require(value >= 0, key, "must be non-negative", "\(value)")
    }
    require(logInterval >= 1, "log_interval", "must be at least 1", "\(logInterval)")
    require(checkpointInterval >= 1, "checkpoint_interval", "must be at least 1", "\(checkpointInterval)")

    guard problems.isEmpty else {
      throw TrainingError("invalid configuration:\n" + problems.map { "  - \($0)" }.joined(separator: "\n"))
    }
  }

  // MARK: Writing

  /// The configuration as YAML, every setting in table order under section comments.
  /// Reading it back gives an equal configuration.
  public func yaml() -> String {
    var lines = ["# SegKit training configuration (resolved: every setting, defaults included)"]
    var section = ""
    for setting in Self.table {
      if setting.section != section {
        section = setting.section
        lines.append("")
        lines.append("# \(section)")
      }
      lines.append("\(setting.key): \(setting.read(self))")
    }
    return lines.joined(separator: "\n") + "\n"
  }

  /// A fingerprint of the resolved configuration (FNV-1a, 64 bits, hex): checkpoints
  /// record it so that resuming with other settings can be noticed. Not cryptographic.
  public var hash: String {
    var value: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in yaml().utf8 {
      value ^= UInt64(byte)
      value = value &* 0x0000_0100_0000_01B3
    }
    return String(format: "%016llx", value)
  }

  // MARK: Derived values

  /// Optimizer steps for a training split of `samples` images: `epochs` full passes when
  /// set (an incomplete last batch is dropped), else `training_number_of_steps`.
  public func totalSteps(trainingSamples samples: Int) -> Int {
    guard let epochs else { return trainingNumberOfSteps }
    return epochs * Swift.max(1, samples / (trainBatchSize * gradientAccumulation))
  }

  /// The learning-rate schedule over `totalSteps` optimizer steps.
  public func learningRateSchedule(totalSteps: Int) throws -> LearningRateSchedule {
    let decay: LearningRateSchedule.Decay
    switch learningPolicy {
    case .poly: decay = .poly(base: baseLearningRate, maxSteps: totalSteps, power: learningPower, end: endLearningRate)
    case .step: decay = .step(base: baseLearningRate, factor: learningRateDecayFactor, every: learningRateDecayStep)
    case .piecewise: decay = .piecewise(boundaries: learningRateBoundaries, values: learningRateValues)
    case .cosine: decay = .cosine(base: baseLearningRate, maxSteps: totalSteps, minimum: endLearningRate)
    }
    return try LearningRateSchedule(decay, warmupSteps: warmupSteps, warmupStartFactor: warmupStartFactor,
                                    slowStartSteps: slowStartStep, slowStartLearningRate: slowStartLearningRate)
  }

  /// The configured optimizer over `groups`.
  public func makeOptimizer(_ groups: [ParameterGroup]) throws -> Optimizer {
    switch optimizer {
    case .sgd: return try SGD(groups, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
    case .adam: return try Adam(groups, beta1: adamBeta1, beta2: adamBeta2, eps: adamEpsilon, weightDecay: weightDecay)
    case .adamw: return try AdamW(groups, beta1: adamBeta1, beta2: adamBeta2, eps: adamEpsilon, weightDecay: weightDecay)
    }
  }

  /// The device to train on: "auto" picks the first CUDA device when there is one, else the CPU.
  public func resolvedDevice() throws -> Device {
    if device == "auto" { return Device.cudaDeviceCount > 0 ? .cuda(0) : .cpu }
    return try Device(parsing: device)
  }
}

// MARK: - Values

/// A type a setting can have: read from a YAML node, written as YAML text.
protocol ConfigValue {
  static var typeDescription: String { get }
  /// nil when the node does not hold a value of this type.
  init?(configNode: Node)
  var yamlText: String { get }
}

/// A plain scalar read from its text.
protocol ConfigScalar: ConfigValue {
  static var pluralDescription: String { get }
  init?(configText: String)
}

extension ConfigScalar {
  init?(configNode: Node) {
    guard case .scalar(let scalar) = configNode, !scalar.isNull else { return nil }
    self.init(configText: scalar.string)
  }
}

extension Node.Scalar {
  /// YAML's null: empty, ~ or null, unquoted.
  var isNull: Bool {
    style == .plain && ["", "~", "null", "Null", "NULL"].contains(string)
  }
}

extension Int: ConfigScalar {
  static var typeDescription: String { "an integer" }
  static var pluralDescription: String { "integers" }
  init?(configText: String) { self.init(configText.replacingOccurrences(of: "_", with: "")) }
  var yamlText: String { String(self) }
}

extension Double: ConfigScalar {
  static var typeDescription: String { "a number" }
  static var pluralDescription: String { "numbers" }
  init?(configText: String) {
    guard let value = Double(configText.replacingOccurrences(of: "_", with: "")), value.isFinite else { return nil }
    self = value
  }

  /// Shortest round-trip text, with a dot before any exponent: YAML 1.1 readers
  /// (PyYAML) take "1e-05" for a string but "1.0e-05" for a float.
  var yamlText: String {
    var text = "\(self)"
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }), !text[..<e].contains(".") {
      text.insert(contentsOf: ".0", at: e)
    }
    return text
  }
}

extension Bool: ConfigScalar {
  static var typeDescription: String { "true or false" }
  static var pluralDescription: String { "booleans" }
  init?(configText: String) {
    switch configText.lowercased() {
    case "true", "yes", "on": self = true
    case "false", "no", "off": self = false
    default: return nil
    }
  }
  var yamlText: String { self ? "true" : "false" }
}

extension String: ConfigScalar {
  static var typeDescription: String { "a string" }
  static var pluralDescription: String { "strings" }
  init?(configText: String) { self = configText }

  /// Plain when YAML reads it back as the same string, else double-quoted.
  var yamlText: String {
    let plainSafe = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "_-./"))
    // Words YAML 1.1 reads as null, booleans or numbers; a leading digit may make a date or a number.
    let resolvesElsewhere = ["~", "null", "Null", "NULL"].contains(self) || Bool(configText: self) != nil
      || Double(configText: self) != nil || first.map { $0.isNumber || $0 == "." || $0 == "-" } ?? true
    if unicodeScalars.allSatisfy(plainSafe.contains), !resolvesElsewhere {
      return self
    }
    var escaped = "\""
    for scalar in unicodeScalars {
      switch scalar {
      case "\"": escaped += "\\\""
      case "\\": escaped += "\\\\"
      case "\n": escaped += "\\n"
      case "\t": escaped += "\\t"
      default: escaped.unicodeScalars.append(scalar)
      }
    }
    return escaped + "\""
  }
}

extension RawRepresentable where Self: CaseIterable, RawValue == String {
  static var typeDescription: String { "one of " + allCases.map(\.rawValue).joined(separator: ", ") }
  static var pluralDescription: String { "values among " + allCases.map(\.rawValue).joined(separator: ", ") }
  init?(configText: String) { self.init(rawValue: configText.lowercased()) }
  var yamlText: String { rawValue }
}

extension TrainingConfig.LearningPolicy: ConfigScalar {}
extension TrainingConfig.OptimizerKind: ConfigScalar {}

extension Array: ConfigValue where Element: ConfigScalar {
  static var typeDescription: String { "a list of \(Element.pluralDescription)" }

  /// A YAML list, or one value, or values separated by commas ("6,12,18" on the command line).
  init?(configNode: Node) {
    switch configNode {
    case .sequence(let sequence):
      var values: [Element] = []
      for item in sequence {
        guard let value = Element(configNode: item) else { return nil }
        values.append(value)
      }
      self = values
    case .scalar(let scalar) where !scalar.isNull:
      var values: [Element] = []
      for part in scalar.string.split(separator: ",", omittingEmptySubsequences: false) {
        guard let value = Element(configText: part.trimmingCharacters(in: .whitespaces)) else { return nil }
        values.append(value)
      }
      self = values
    default:
      return nil
    }
  }

  var yamlText: String { "[" + map(\.yamlText).joined(separator: ", ") + "]" }
}

extension Optional: ConfigValue where Wrapped: ConfigValue {
  static var typeDescription: String { "\(Wrapped.typeDescription) or null" }

  init?(configNode: Node) {
    if case .scalar(let scalar) = configNode, scalar.isNull {
      self = .none
      return
    }
    guard let value = Wrapped(configNode: configNode) else { return nil }
    self = .some(value)
  }

  var yamlText: String { map(\.yamlText) ?? "null" }
}
