import Foundation
import SegKitData
import XCTest

/// In-memory samples: image and label encode the index; `broken` indices fail to load;
/// samples not in `plain` carry a previous frame, mask and flow.
private struct SyntheticSource: SampleSource {
  var count: Int
  var broken: Set<Int> = []
  var plain: Set<Int>? = nil

  func loadSample(at index: Int) throws -> Sample {
    if broken.contains(index) { throw DataError("/data/\(index).png: truncated file") }
    let (w, h) = (12, 10)
    let pixels = (0..<(w * h * 3)).map { UInt8(($0 * 7 + index * 13) % 256) }
    let labels = (0..<(w * h)).map { UInt8(($0 + index) % 5) }
    let image = try Image(width: w, height: h, channels: 3, pixels: pixels)
    let label = try Image(width: w, height: h, channels: 1, pixels: labels)
    var sample = Sample(name: "s\(index)", image: image, label: label)
    if let plain, !plain.contains(index) {
      sample.frames[.previous] = image
      sample.masks[.previous] = label
      sample.flows[.previous] = try FlowField(width: w, height: h, values: [Float](repeating: 1, count: 2 * w * h))
    }
    return sample
  }
}

final class LoaderTests: XCTestCase {
  private let augmentation: Augmentation = {
    var a = Augmentation.deeplab(crop: 8, minScale: 0.75, maxScale: 1.5, step: 0.25)
    a.brightness = 0.3
    return a
  }()

  private func loader(count: Int = 10, batch: Int = 4, workers: Int = 0, dropLast: Bool = false, seed: UInt64 = 5,
                      broken: Set<Int> = [], policy: BadSamplePolicy = .fail, plain: Set<Int>? = nil,
                      rank: Int = 0, worldSize: Int = 1) throws -> DataLoader {
    try DataLoader(source: SyntheticSource(count: count, broken: broken, plain: plain), augmentation: augmentation,
                   options: LoaderOptions(batchSize: batch, seed: seed, dropLast: dropLast, workers: workers, prefetch: 3,
                                          badSamples: policy, rank: rank, worldSize: worldSize))
  }

  private struct Snapshot: Equatable {
    var names: [String]
    var images: [Float]
    var labels: [Int64]
    var position: LoaderPosition
  }

  private func drain(_ iterator: BatchIterator) throws -> [Snapshot] {
    var out: [Snapshot] = []
    while let batch = try iterator.next() {
      out.append(Snapshot(names: batch.names, images: try batch.images.toArray(Float.self),
                          labels: try batch.labels!.toArray(Int64.self), position: batch.position))
    }
    return out
  }

  func testShuffleIsAPureFunctionOfSeedAndEpoch() throws {
    let a = try loader(), b = try loader()
    XCTAssertEqual(a.order(epoch: 3), b.order(epoch: 3))
    XCTAssertEqual(a.order(epoch: 0).sorted(), Array(0..<10))
    XCTAssertNotEqual(a.order(epoch: 0), a.order(epoch: 1))
    XCTAssertNotEqual(a.order(epoch: 0), try loader(seed: 6).order(epoch: 0))
    XCTAssertEqual(try drain(a.batches(epoch: 2)), try drain(b.batches(epoch: 2)))
  }

  func testBatchShapesAndDropLast() throws {
    let keep = try loader()
    XCTAssertEqual(keep.stepsPerEpoch, 3)
    let batches = try drain(keep.batches(epoch: 0))
    XCTAssertEqual(batches.map(\.names.count), [4, 4, 2])
    XCTAssertEqual(Set(batches.flatMap(\.names)).count, 10)
    let dropped = try loader(dropLast: true)
    XCTAssertEqual(dropped.stepsPerEpoch, 2)
    XCTAssertEqual(try drain(dropped.batches(epoch: 0)).map(\.names.count), [4, 4])

    let batch = try XCTUnwrap(try keep.batches(epoch: 0).next())
    XCTAssertEqual(batch.images.shape, [4, 3, 8, 8])
    XCTAssertEqual(batch.images.dtype, .float32)
    XCTAssertEqual(batch.labels?.shape, [4, 8, 8])
    XCTAssertEqual(batch.labels?.dtype, .int64)
    XCTAssertEqual(batch.next, LoaderPosition(epoch: 0, step: 1))
  }

  func testResumingAtAPositionContinuesTheSameOrder() throws {
    let l = try loader(dropLast: true)
    let uninterrupted = try drain(l.batches(from: .start, count: 7))
    XCTAssertEqual(uninterrupted.map(\.position.epoch), [0, 0, 1, 1, 2, 2, 3])
    // Stop after 3 batches, keep the position, resume in a new iterator.
    let first = l.batches(from: .start, count: 3)
    let head = try drain(first)
    XCTAssertEqual(first.position, LoaderPosition(epoch: 1, step: 1))
    let tail = try drain(l.batches(from: first.position, count: 4))
    XCTAssertEqual(head + tail, uninterrupted)
  }

  func testParallelWorkersGiveTheSameBatchesAsOne() throws {
    let serial = try drain(loader(count: 23, batch: 3, workers: 0).batches(from: .start, count: 12))
    for workers in [1, 3] {
      XCTAssertEqual(try drain(loader(count: 23, batch: 3, workers: workers).batches(from: .start, count: 12)), serial,
                     "\(workers) workers")
    }
    // Abandoning an iterator mid-way stops its workers cleanly.
    let abandoned = try loader(count: 23, batch: 3, workers: 3).batches(epoch: 0)
    _ = try abandoned.next()
  }

  func testBadSamplesFailOrAreSkipped() throws {
    let failing = try loader(workers: 2, broken: [3])
    let step = (0..<3).first { failing.indices(epoch: 0, step: $0).contains(3) }!
    let iterator = failing.batches(epoch: 0)
    for _ in 0..<step { XCTAssertNotNil(try iterator.next()) }
    XCTAssertThrowsError(try iterator.next()) { XCTAssertTrue("\($0)".contains("/data/3.png: truncated file")) }
    XCTAssertNil(try iterator.next())

    let skipping = try drain(loader(workers: 2, broken: [3], policy: .skip).batches(epoch: 0))
    XCTAssertEqual(skipping.flatMap(\.names).count, 9)
    XCTAssertFalse(skipping.flatMap(\.names).contains("s3"))
  }

  func testExtrasBecomeKeyedTensorsAndMixingIsAnError() throws {
    let batch = try XCTUnwrap(try loader(plain: []).batches(epoch: 0).next())
    XCTAssertEqual(batch.frames[.previous]?.shape, [4, 3, 8, 8])
    XCTAssertEqual(try batch.frames[.previous]?.toArray(Float.self), try batch.images.toArray(Float.self))
    XCTAssertEqual(batch.masks[.previous]?.shape, [4, 8, 8])
    XCTAssertEqual(batch.masks[.previous]?.dtype, .int64)
    XCTAssertEqual(try batch.masks[.previous]?.toArray(Int64.self), try batch.labels?.toArray(Int64.self).map { $0 == 255 ? 0 : $0 })
    XCTAssertEqual(batch.flows[.previous]?.shape, [4, 2, 8, 8])
    XCTAssertEqual(batch.flows[.previous]?.dtype, .float32)
    let plainBatch = try XCTUnwrap(try loader().batches(epoch: 0).next())
    XCTAssertTrue(plainBatch.frames.isEmpty && plainBatch.masks.isEmpty && plainBatch.flows.isEmpty)

    let mixed = try loader(plain: [7])
    let step = try XCTUnwrap((0..<3).first { mixed.indices(epoch: 0, step: $0).contains(7) })
    XCTAssertThrowsError(try drain(mixed.batches(epoch: 0, from: step))) {
      XCTAssertTrue("\($0)".contains("mixes samples with and without a frame 'previous' (s7 has none)"), "\($0)")
    }
  }

  // MARK: Sharding

  /// Each sample's normalised image by name, from batches of 3 × 8 × 8 crops.
  private func imagesByName(_ batches: [Snapshot]) -> [String: [Float]] {
    var images: [String: [Float]] = [:]
    for batch in batches {
      for (i, name) in batch.names.enumerated() { images[name] = Array(batch.images[(i * 192)..<((i + 1) * 192)]) }
    }
    return images
  }

  func testRanksTakeDisjointEqualShardsOfTheEpoch() throws {
    let ranks = try (0..<2).map { try loader(count: 11, batch: 2, rank: $0, worldSize: 2) }
    let whole = try loader(count: 11, batch: 2)
    for epoch in 0..<3 {
      let global = whole.globalOrder(epoch: epoch)
      XCTAssertEqual(ranks[1].globalOrder(epoch: epoch), global)
      let shards = ranks.map { $0.order(epoch: epoch) }
      XCTAssertEqual(shards.map(\.count), [5, 5])
      XCTAssertEqual(shards[0], stride(from: 0, to: 10, by: 2).map { global[$0] })
      XCTAssertTrue(Set(shards[0]).isDisjoint(with: shards[1]))
      // The odd sample out is the last of the global order, as DistributedSampler(drop_last=True).
      XCTAssertEqual(Set(shards[0] + shards[1]), Set(global.prefix(10)))
      XCTAssertEqual(ranks[0].indices(epoch: epoch, step: 2), [shards[0][4]])
    }
    XCTAssertEqual(ranks.map(\.samplesPerEpoch), [5, 5])
    XCTAssertEqual(ranks.map(\.stepsPerEpoch), [3, 3])
    XCTAssertEqual(try (0..<2).map { try loader(count: 11, batch: 2, dropLast: true, rank: $0, worldSize: 2).stepsPerEpoch }, [2, 2])
    // A sample is augmented alike whichever rank draws it.
    let alone = imagesByName(try drain(whole.batches(epoch: 1)))
    for rank in ranks {
      for (name, image) in imagesByName(try drain(rank.batches(epoch: 1))) { XCTAssertEqual(image, alone[name], name) }
    }
    XCTAssertThrowsError(try loader(rank: 2, worldSize: 2)) { XCTAssertTrue("\($0)".contains("rank 2")) }
    XCTAssertThrowsError(try loader(rank: -1, worldSize: 2))
    XCTAssertThrowsError(try loader(worldSize: 0))
  }

  func testEachRankResumesItsOwnSequenceWithAnyWorkerCount() throws {
    for rank in 0..<2 {
      let serial = try loader(count: 11, batch: 2, rank: rank, worldSize: 2)
      let uninterrupted = try drain(serial.batches(from: .start, count: 8))
      XCTAssertEqual(uninterrupted.map(\.position.epoch), [0, 0, 0, 1, 1, 1, 2, 2])
      XCTAssertEqual(uninterrupted.prefix(3).flatMap(\.names), serial.order(epoch: 0).map { "s\($0)" })
      let resumed = try drain(serial.batches(from: LoaderPosition(epoch: 1, step: 1), count: 4))
      XCTAssertEqual(resumed, Array(uninterrupted.suffix(4)), "rank \(rank)")
      let parallel = try loader(count: 11, batch: 2, workers: 2, rank: rank, worldSize: 2)
      XCTAssertEqual(try drain(parallel.batches(from: .start, count: 8)), uninterrupted, "rank \(rank), 2 workers")
      XCTAssertEqual(try drain(parallel.batches(from: LoaderPosition(epoch: 1, step: 1), count: 4)), Array(uninterrupted.suffix(4)))
    }
  }
}
