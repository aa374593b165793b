import Foundation

/// Where a run stands: what a checkpoint needs besides the tensors to continue exactly.
public struct CheckpointMetadata {
  /// Optimizer steps taken (the global step).
  public var step: Int
  public var epoch: Int
  /// Position in the current epoch's sample order (samples already consumed), so a
  /// resumed run continues with the next sample of the same shuffled order.
  public var dataPosition: Int
  /// The run's seed; the shuffle order and augmentation derive from it.
  public var seed: UInt64
  /// `TrainingConfig.hash` of the configuration that wrote the checkpoint.
  public var configHash: String
  /// The learning-rate schedule in force (a pure function of `step`).
  public var schedule: LearningRateSchedule?
  /// Anything else the caller wants kept (e.g. best validation mIoU so far).
  public var extra: [String: String]

  public init(
    step: Int, epoch: Int = 0, dataPosition: Int = 0, seed: UInt64 = 0, configHash: String = "",
    schedule: LearningRateSchedule? = nil, extra: [String: String] = [:]
  ) {
    self.step = step
    self.epoch = epoch
    self.dataPosition = dataPosition
    self.seed = seed
    self.configHash = configHash
    self.schedule = schedule
    self.extra = extra
  }

  static let formatKey = "segkit.format"
  static let formatValue = "checkpoint-1"

  /// The safetensors `__metadata__` strings.
  func strings() throws -> [String: String] {
    var result = extra.reduce(into: [String: String]()) { $0["extra.\($1.key)"] = $1.value }
    result[Self.formatKey] = Self.formatValue
    result["step"] = String(step)
    result["epoch"] = String(epoch)
    result["data_position"] = String(dataPosition)
    result["seed"] = String(seed)
    result["config_hash"] = configHash
    if let schedule { result["schedule"] = try ScheduleRecord(schedule).json() }
    return result
  }

  init(strings: [String: String], file: String) throws {
    guard strings[Self.formatKey] == Self.formatValue else {
      throw InferenceError("\(file): not a SegKit training checkpoint (no \(Self.formatKey) = \(Self.formatValue) in its metadata)")
    }
    // Bounded far above any real run (steps are at most 10^9), so the loop's arithmetic on them cannot overflow.
    func integer(_ key: String) throws -> Int {
      guard let text = strings[key], let value = Int(text), value >= 0, value <= 1 << 40 else {
        throw InferenceError("\(file): checkpoint metadata '\(key)' is missing or not an integer in [0, 2^40]")
      }
      return value
    }
    guard let seed = strings["seed"].flatMap(UInt64.init) else {
      throw InferenceError("\(file): checkpoint metadata 'seed' is missing or not an integer")
    }
    self.init(
      step: try integer("step"), epoch: try integer("epoch"), dataPosition: try integer("data_position"), seed: seed,
      configHash: strings["config_hash"] ?? "",
      schedule: try strings["schedule"].map { try ScheduleRecord(json: $0, file: file).schedule(file: file) },
      extra: strings.reduce(into: [:]) { result, pair in
        if pair.key.hasPrefix("extra.") { result[String(pair.key.dropFirst(6))] = pair.value }
      })
  }
}

/// Model weights, optimizer state and metadata, in one safetensors file: the model's
/// tensors under their state-dict names, the optimizer's under "optimizer." (its
/// `stateTensors()` names, e.g. "optimizer.param.3.momentum_buffer"), the metadata
/// as strings in `__metadata__`.
public struct Checkpoint {
  public var model: StateDict
  public var optimizer: [(String, Tensor)]
  public var metadata: CheckpointMetadata

  /// The prefix of the optimizer's entries; model weights never use it.
  public static let optimizerPrefix = "optimizer."

  public init(model: StateDict, optimizer: [(String, Tensor)] = [], metadata: CheckpointMetadata) {
    self.model = model
    self.optimizer = optimizer
    self.metadata = metadata
  }

  /// The current state of a model and its optimizer.
  public init(model: Module, optimizer: Optimizer?, metadata: CheckpointMetadata) throws {
    self.init(model: try StateDict(try model.stateDict()), optimizer: try optimizer?.stateTensors() ?? [],
              metadata: metadata)
  }

  /// Writes atomically: the file appears complete or not at all.
  public func write(to url: URL) throws {
    var all = StateDict()
    for (name, tensor) in model {
      guard !name.hasPrefix(Self.optimizerPrefix) else {
        throw InferenceError("\(url.path): model entry '\(name)' clashes with the optimizer's '\(Self.optimizerPrefix)' prefix")
      }
      all.set(name, tensor)
    }
    for (name, tensor) in optimizer { all.set(Self.optimizerPrefix + name, tensor) }
    try all.save(to: url, metadata: try metadata.strings())
  }

  /// Reads and checks a checkpoint (structure and metadata; tensor values are not checksummed).
  public static func read(contentsOf url: URL) throws -> Checkpoint {
    let (all, strings) = try SafeTensors.read(contentsOf: url)
    let metadata = try CheckpointMetadata(strings: strings, file: url.path)
    var model = StateDict()
    var optimizer: [(String, Tensor)] = []
    for (name, tensor) in all {
      if name.hasPrefix(optimizerPrefix) {
        optimizer.append((String(name.dropFirst(optimizerPrefix.count)), tensor))
      } else {
        model.set(name, tensor)
      }
    }
    return Checkpoint(model: model, optimizer: optimizer, metadata: metadata)
  }

  /// Loads the weights into `model` (strictly: every name must match) and the state into `optimizer`.
  public func restore(model target: Module, optimizer targetOptimizer: Optimizer?) throws {
    try target.loadStateDict(model)
    try targetOptimizer?.loadStateTensors(optimizer)
  }
}

/// The checkpoints of a run: `step-000123.safetensors` files in one folder, the last `keep` kept.
public struct CheckpointStore {
  public let directory: URL
  /// How many checkpoints to keep, newest first; 0 keeps them all.
  public let keep: Int

  public init(directory: URL, keep: Int = 5) {
    self.directory = directory
    self.keep = max(0, keep)
  }

  public func url(forStep step: Int) -> URL {
    directory.appendingPathComponent("step-\(String(format: "%06d", step)).safetensors")
  }

  /// The saved checkpoints, oldest first (by step, whatever the number of digits).
  public func saved() -> [(step: Int, url: URL)] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    return names.compactMap { name -> (Int, URL)? in
      guard name.hasPrefix("step-"), name.hasSuffix(".safetensors"),
            let step = Int(name.dropFirst(5).dropLast(12)), step >= 0
      else { return nil }
      return (step, directory.appendingPathComponent(name))
    }.sorted { $0.0 < $1.0 }
  }

  /// Writes the checkpoint for its step, then removes the oldest beyond `keep` and any
  /// temporary file an interrupted write left behind.
  @discardableResult
  public func save(_ checkpoint: Checkpoint) throws -> URL {
    do {
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
      throw InferenceError("cannot create the checkpoint folder \(directory.path): \(error.localizedDescription)")
    }
    let url = url(forStep: checkpoint.metadata.step)
    try checkpoint.write(to: url)
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    for name in names where name.hasPrefix(".step-") && name.hasSuffix(".partial") {
      try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
    }
    if keep > 0 {
      // Checkpoints of later steps than this one are what a resume skipped (unreadable)
      // or abandoned: neither counted nor deleted, so the one just written always stays.
      let thisRun = saved().filter { $0.step <= checkpoint.metadata.step }
      for old in thisRun.dropLast(keep) { try? FileManager.default.removeItem(at: old.url) }
    }
    return url
  }

  /// The newest checkpoint that reads back whole. Unreadable ones (truncated, corrupt,
  /// not a checkpoint) are skipped, each reported through `warning`.
  public func latest(warning: (String) -> Void = { _ in }) -> (url: URL, checkpoint: Checkpoint)? {
    for candidate in saved().reversed() {
      do {
        return (candidate.url, try Checkpoint.read(contentsOf: candidate.url))
      } catch {
        warning("skipping unreadable checkpoint \(candidate.url.path): \(error)")
      }
    }
    return nil
  }
}

// MARK: - Schedule as JSON

/// A `LearningRateSchedule` as a flat JSON object, for checkpoint metadata.
struct ScheduleRecord: Codable {
  var policy: String
  var base: Double?
  var rate: Double?
  var maxSteps: Int?
  var power: Double?
  var end: Double?
  var factor: Double?
  var every: Int?
  var boundaries: [Int]?
  var values: [Double]?
  var minimum: Double?
  var warmupSteps: Int
  var warmupStartFactor: Double
  var slowStartSteps: Int
  var slowStartLearningRate: Double

  enum CodingKeys: String, CodingKey {
    case policy, base, rate, power, end, factor, every, boundaries, values, minimum
    case maxSteps = "max_steps", warmupSteps = "warmup_steps", warmupStartFactor = "warmup_start_factor"
    case slowStartSteps = "slow_start_steps", slowStartLearningRate = "slow_start_learning_rate"
  }

  init(_ schedule: LearningRateSchedule) {
    warmupSteps = schedule.warmupSteps
    warmupStartFactor = schedule.warmupStartFactor
    slowStartSteps = schedule.slowStartSteps
    slowStartLearningRate = schedule.slowStartLearningRate
    switch schedule.decay {
    case .constant(let rate):
      policy = "constant"
      self.rate = rate
    case .poly(let base, let maxSteps, let power, let end):
      policy = "poly"
      (self.base, self.maxSteps, self.power, self.end) = (base, maxSteps, power, end)
    case .step(let base, let factor, let every):
      policy = "step"
      (self.base, self.factor, self.every) = (base, factor, every)
    case .piecewise(let boundaries, let values):
      policy = "piecewise"
      (self.boundaries, self.values) = (boundaries, values)
    case .cosine(let base, let maxSteps, let minimum):
      policy = "cosine"
      (self.base, self.maxSteps, self.minimum) = (base, maxSteps, minimum)
    }
  }

  init(json: String, file: String) throws {
    do {
      self = try JSONDecoder().decode(ScheduleRecord.self, from: Data(json.utf8))
    } catch {
      throw InferenceError("\(file): checkpoint metadata 'schedule' is not a valid schedule: \(error)")
    }
  }

  func json() throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    return String(decoding: try encoder.encode(self), as: UTF8.self)
  }

  func schedule(file: String) throws -> LearningRateSchedule {
    func need<T>(_ value: T?, _ name: String) throws -> T {
      guard let value else { throw InferenceError("\(file): checkpoint schedule '\(policy)' lacks '\(name)'") }
      return value
    }
    let decay: LearningRateSchedule.Decay
    switch policy {
    case "constant": decay = .constant(try need(rate, "rate"))
    case "poly":
      decay = .poly(base: try need(base, "base"), maxSteps: try need(maxSteps, "max_steps"),
                    power: try need(power, "power"), end: try need(end, "end"))
    case "step": decay = .step(base: try need(base, "base"), factor: try need(factor, "factor"), every: try need(every, "every"))
    case "piecewise": decay = .piecewise(boundaries: try need(boundaries, "boundaries"), values: try need(values, "values"))
    case "cosine":
      decay = .cosine(base: try need(base, "base"), maxSteps: try need(maxSteps, "max_steps"),
                      minimum: try need(minimum, "minimum"))
    default: throw InferenceError("\(file): checkpoint schedule has unknown policy '\(policy)'")
    }
    return try LearningRateSchedule(decay, warmupSteps: warmupSteps, warmupStartFactor: warmupStartFactor,
                                    slowStartSteps: slowStartSteps, slowStartLearningRate: slowStartLearningRate)
  }
}
