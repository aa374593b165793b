import Foundation

/// What the loader does with a sample that cannot be loaded (missing or unreadable
/// file, label size differing from its image, label values outside the classes).
public enum BadSamplePolicy: String, Sendable {
  /// The batch fails with the sample's error.
  case fail
  /// The sample is left out of its batch, with a warning on standard error and in `Batch.skipped`.
  case skip
}

/// Where a run is in the data: the next batch to produce is step `step` of epoch `epoch`.
public struct LoaderPosition: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
  public var epoch: Int
  public var step: Int

  public init(epoch: Int, step: Int) {
    self.epoch = epoch
    self.step = step
  }

  public static let start = LoaderPosition(epoch: 0, step: 0)
  public var description: String { "epoch \(epoch) step \(step)" }
}

public struct LoaderOptions: Sendable {
  public var batchSize: Int
  public var shuffle = true
  public var seed: UInt64 = 0
  /// Leaves out the last, smaller batch of an epoch.
  public var dropLast = false
  /// Worker tasks decoding and augmenting in parallel; 0 does the work on the consumer's thread.
  public var workers = 2
  /// Batches produced ahead of the consumer (at least `workers` to keep every worker busy).
  public var prefetch = 4
  public var badSamples: BadSamplePolicy = .fail
  /// This process's shard of each epoch, for multi-process training: rank `rank` of
  /// `worldSize` processes (see `DataLoader.order(epoch:)`).
  public var rank = 0
  public var worldSize = 1

  public init(batchSize: Int, shuffle: Bool = true, seed: UInt64 = 0, dropLast: Bool = false, workers: Int = 2,
              prefetch: Int = 4, badSamples: BadSamplePolicy = .fail, rank: Int = 0, worldSize: Int = 1) {
    self.batchSize = batchSize
    self.shuffle = shuffle
    self.seed = seed
    self.dropLast = dropLast
    self.workers = workers
    self.prefetch = prefetch
    self.badSamples = badSamples
    self.rank = rank
    self.worldSize = worldSize
  }
}

/// A batch as tensors, built on the consuming thread.
public struct Batch {
  /// [N, 3, H, W] float32, normalised.
  public let images: Tensor
  /// [N, H, W] int64 label ids, void 255.
  public let labels: Tensor?
  /// [N, 3, H, W] float32 extra frames, normalised like `images`.
  public let frames: [SampleKey: Tensor]
  /// [N, H, W] int64 masks (padding 0).
  public let masks: [SampleKey: Tensor]
  /// [N, 2, H, W] float32 optical flows, in output pixels.
  public let flows: [SampleKey: Tensor]
  public let names: [String]
  /// This batch's place, and the place to resume from after it.
  public let position: LoaderPosition
  public let next: LoaderPosition
  /// Warnings for samples left out under `BadSamplePolicy.skip`.
  public let skipped: [String]
}

/// Batches of augmented samples with seeded shuffling, parallel workers, resumable positions
/// and sharding across processes.
///
/// Everything is a pure function of the seed: the global order of epoch e is a permutation
/// drawn from (seed, e); rank r of W processes takes every W-th sample of it starting at r;
/// and sample i of epoch e is augmented with a stream drawn from (seed, e, i), whichever rank
/// draws it. So a run resumed at a position sees the batches an uninterrupted run would have
/// seen, and any number of workers gives the same batches as one.
public struct DataLoader: Sendable {
  public let source: any SampleSource
  public let augmentation: Augmentation
  public let options: LoaderOptions

  public init(source: any SampleSource, augmentation: Augmentation, options: LoaderOptions) throws {
    guard options.batchSize > 0 else { throw DataError("batch size must be positive, not \(options.batchSize)") }
    guard options.workers >= 0 else { throw DataError("worker count must not be negative") }
    guard options.worldSize > 0 else { throw DataError("world size must be positive, not \(options.worldSize)") }
    guard (0..<options.worldSize).contains(options.rank) else {
      throw DataError("rank \(options.rank) is outside 0..<\(options.worldSize) (the world size)")
    }
    self.source = source
    self.augmentation = augmentation
    self.options = options
  }

  /// The samples this rank sees per epoch: every rank the same count, ⌊count / worldSize⌋.
  public var samplesPerEpoch: Int { source.count / options.worldSize }

  public var stepsPerEpoch: Int {
    options.dropLast ? samplesPerEpoch / options.batchSize : (samplesPerEpoch + options.batchSize - 1) / options.batchSize
  }

  /// Every sample of `epoch` in the order all ranks share: a pure function of (seed, epoch).
  public func globalOrder(epoch: Int) -> [Int] {
    guard options.shuffle else { return Array(0..<source.count) }
    var random = SeededRandom(options.seed, 0x5348_5546, UInt64(truncatingIfNeeded: epoch))
    return random.permutation(source.count)
  }

  /// This rank's sample order of `epoch`: positions rank, rank + worldSize, … of the global
  /// order, `samplesPerEpoch` of them. As PyTorch's DistributedSampler with drop_last, the
  /// last count mod worldSize samples of the global order are left out of that epoch (with
  /// shuffling, each epoch leaves out others), so that every rank runs the same number of steps.
  public func order(epoch: Int) -> [Int] {
    let global = globalOrder(epoch: epoch)
    return (0..<samplesPerEpoch).map { global[$0 * options.worldSize + options.rank] }
  }

  /// This rank's sample indices of batch `step` of `epoch`.
  public func indices(epoch: Int, step: Int) -> [Int] {
    indices(in: order(epoch: epoch), step: step)
  }

  func indices(in order: [Int], step: Int) -> [Int] {
    let start = step * options.batchSize
    return Array(order[start..<min(start + options.batchSize, order.count)])
  }

  /// The augmentation seed of sample `index` in `epoch`.
  public func sampleSeed(epoch: Int, index: Int) -> UInt64 {
    var random = SeededRandom(options.seed, 0x4155_4721, UInt64(truncatingIfNeeded: epoch), UInt64(index))
    return random.next()
  }

  /// One epoch's batches from `step` on.
  public func batches(epoch: Int, from step: Int = 0) -> BatchIterator {
    BatchIterator(loader: self, start: LoaderPosition(epoch: epoch, step: step), count: max(0, stepsPerEpoch - step))
  }

  /// Batches from `position` on, across epochs: `count` of them, or without end when nil.
  public func batches(from position: LoaderPosition, count: Int? = nil) -> BatchIterator {
    BatchIterator(loader: self, start: position, count: stepsPerEpoch == 0 ? 0 : count ?? Int.max)
  }

  /// The position `offset` batches after `start`.
  func position(_ start: LoaderPosition, plus offset: Int) -> LoaderPosition {
    let flat = start.step + offset
    return LoaderPosition(epoch: start.epoch + flat / stepsPerEpoch, step: flat % stepsPerEpoch)
  }

  /// Loads and augments one batch into plain buffers (no tensors: this runs on worker threads).
  func produce(at position: LoaderPosition, order: [Int]) throws -> HostBatch {
    var samples: [AugmentedSample] = []
    var skipped: [String] = []
    for index in indices(in: order, step: position.step) {
      do {
        let seed = sampleSeed(epoch: position.epoch, index: index)
        let sample = try (source as? any DrawnSampleSource)?.loadSample(at: index, epoch: position.epoch, seed: ~seed)
          ?? source.loadSample(at: index)
        samples.append(try augmentation.apply(to: sample, seed: seed))
      } catch {
        guard options.badSamples == .skip else { throw error }
        let message = "skipped sample \(index) at \(position): \(error)"
        FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
        skipped.append(message)
      }
    }
    return try HostBatch(samples, position: position, skipped: skipped)
  }
}

/// A batch's samples packed into contiguous buffers, ready for one copy into tensors.
struct HostBatch: Sendable {
  let position: LoaderPosition
  let names: [String]
  let width: Int, height: Int
  let images: [Float]
  let labels: [UInt8]?
  let frames: [SampleKey: [Float]]
  let masks: [SampleKey: [UInt8]]
  let flows: [SampleKey: [Float]]
  let skipped: [String]

  init(_ samples: [AugmentedSample], position: LoaderPosition, skipped: [String]) throws {
    self.position = position
    self.skipped = skipped
    names = samples.map(\.name)
    let (width, height) = (samples.first?.width ?? 0, samples.first?.height ?? 0)
    (self.width, self.height) = (width, height)
    if let odd = samples.first(where: { $0.width != width || $0.height != height }) {
      throw DataError(
        "samples of the batch at \(position) differ in size: \(samples[0].name) is \(width)×\(height), \(odd.name) is \(odd.width)×\(odd.height); add a crop or a resize to the augmentation")
    }
    images = samples.flatMap(\.image)
    labels = try HostBatch.all(samples, "a label", position) { $0.label }
    frames = try HostBatch.keyed(samples, "a frame", position) { $0.frames }
    masks = try HostBatch.keyed(samples, "a mask", position) { $0.masks }
    flows = try HostBatch.keyed(samples, "a flow", position) { $0.flows }
  }

  /// Every sample's part, concatenated, or nil when none has it; a batch mixing both is an error.
  static func all<T>(_ samples: [AugmentedSample], _ what: String, _ position: LoaderPosition,
                     _ part: (AugmentedSample) -> [T]?) throws -> [T]? {
    let parts = samples.compactMap(part)
    if parts.isEmpty { return nil }
    if let missing = samples.first(where: { part($0) == nil }) {
      throw DataError("the batch at \(position) mixes samples with and without \(what) (\(missing.name) has none)")
    }
    return parts.flatMap { $0 }
  }

  /// Every key any sample has, each through `all`.
  static func keyed<T>(_ samples: [AugmentedSample], _ kind: String, _ position: LoaderPosition,
                       _ entries: (AugmentedSample) -> [SampleKey: [T]]) throws -> [SampleKey: [T]] {
    let keys = Set(samples.flatMap { entries($0).keys }).sorted()
    var packed: [SampleKey: [T]] = [:]
    for key in keys { packed[key] = try all(samples, "\(kind) '\(key)'", position) { entries($0)[key] } }
    return packed
  }

  /// Tensors, on the calling (consuming) thread.
  func tensors(next: LoaderPosition) throws -> Batch {
    let n = names.count
    return Batch(
      images: try Tensor(images, shape: [n, 3, height, width]),
      labels: try labels.map { try Tensor($0, shape: [n, height, width]).to(.int64) },
      frames: try frames.mapValues { try Tensor($0, shape: [n, 3, height, width]) },
      masks: try masks.mapValues { try Tensor($0, shape: [n, height, width]).to(.int64) },
      flows: try flows.mapValues { try Tensor($0, shape: [n, 2, height, width]) },
      names: names, position: position, next: next, skipped: skipped)
  }
}
