import Foundation
import SegKitData
import SegKitTestSupport
import XCTest

/// Training samples for mask propagation: the previous mask warped with the flow from
/// the current frame back, perturbed reproducibly, flows zero past the ends; and the
/// perturbations themselves.
final class MaskPropagationTests: XCTestCase {
  func testPerturbations() {
    var dot = Image(width: 9, height: 7, channels: 1)
    dot.pixels[3 * 9 + 4] = 1
    let grown = MaskPerturbation.morph(dot, radius: 1, grow: true)
    XCTAssertEqual(grown.pixels.filter { $0 == 1 }.count, 9)
    XCTAssertEqual(MaskPerturbation.morph(grown, radius: 1, grow: false).pixels, dot.pixels)
    var random = SeededRandom(seed: 3)
    XCTAssertEqual(MaskPerturbation.none.apply(to: grown, random: &random).pixels, grown.pixels)
    let shift = MaskPerturbation(maximumShift: 2)
    var (a, b) = (SeededRandom(seed: 5), SeededRandom(seed: 5))
    let shifted = shift.apply(to: grown, random: &a)
    XCTAssertEqual(shifted.pixels, shift.apply(to: grown, random: &b).pixels, "one draw, one result")
    XCTAssertEqual(shifted.pixels.filter { $0 == 1 }.count, 9, "a shift of at most 2 keeps a centred 3×3 block inside 9×7")
    var dropped = SeededRandom(seed: 1)
    let holed = MaskPerturbation(dropProbability: 1, maximumDropFraction: 0.5).apply(to: grown, random: &dropped)
    XCTAssertLessThan(holed.pixels.filter { $0 == 1 }.count, 9)
  }

  func testSamplesOfADAVISSplit() throws {
    let root = try Oracle.temporaryDirectory("segkit-mask-propagation")
    defer { try? FileManager.default.removeItem(at: root) }
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames, options.objects) = (1, 0, 3, 2)
    (options.width, options.height, options.seed) = (48, 32, 4)
    try Synthetic.writeVideo(to: root, options: options)
    let dataset = try VideoDataset.davis2017(root: root, split: "train")
    let cache = try FlowCache(folder: root.appendingPathComponent("flows"), preset: .ultrafast)
    let source = try MaskPropagationSource(dataset: dataset, flows: cache, perturbation: .none)
    XCTAssertEqual(source.count, 6, "3 frames × 2 objects")
    let sequence = dataset.sequences[0]
    let annotations = try sequence.frames.map { try ImageIO.readLabel(XCTUnwrap($0.label?.url)) }
    func object(_ frame: Int, _ id: UInt8) throws -> Image {
      try Image(width: 48, height: 32, channels: 1, pixels: annotations[frame].pixels.map { $0 == id ? 1 : 0 })
    }
    // Frame 1, object 2 (items run frame by frame, objects within).
    let sample = try source.loadSample(at: 3)
    XCTAssertEqual(source.items[3].frame, 1)
    XCTAssertEqual(source.items[3].object, 2)
    XCTAssertEqual(sample.label?.pixels, try object(1, 2).pixels)
    let backward = try XCTUnwrap(try cache.flows(of: sequence, frame: 1).backward)
    XCTAssertEqual(sample.masks[.previous]?.pixels, try FlowWarp.warp(mask: try object(0, 2), by: backward).pixels)
    XCTAssertEqual(sample.flows[.previous], backward)
    // The first frame's previous mask is its own; no flow before it or after the last.
    let first = try source.loadSample(at: 0)
    XCTAssertEqual(first.masks[.previous]?.pixels, try object(0, 1).pixels)
    XCTAssertTrue(try XCTUnwrap(first.flows[.previous]).values.allSatisfy { $0 == 0 })
    XCTAssertTrue(try XCTUnwrap(try source.loadSample(at: 5).flows[.next]).values.allSatisfy { $0 == 0 })

    // Perturbed samples are the same on every read; through the loader with OSVOS's augmentation.
    let perturbed = try MaskPropagationSource(dataset: dataset, flows: cache, perturbation: .training, seed: 7)
    XCTAssertEqual(try perturbed.loadSample(at: 3).masks[.previous]?.pixels, try perturbed.loadSample(at: 3).masks[.previous]?.pixels)
    var augmentation = Augmentation.osvos()
    augmentation.crop = Size2(32, 48)
    let loader = try DataLoader(source: perturbed, augmentation: augmentation,
                                options: LoaderOptions(batchSize: 2, shuffle: true, seed: 1, workers: 0))
    let batches = loader.batches(epoch: 0)
    let batch = try XCTUnwrap(try batches.next())
    XCTAssertEqual(batch.images.shape, [2, 3, 32, 48])
    XCTAssertEqual(batch.masks[.previous]?.shape, [2, 32, 48])
    XCTAssertEqual(batch.flows[.previous]?.shape, [2, 2, 32, 48])
    XCTAssertEqual(batch.flows[.next]?.shape, [2, 2, 32, 48])
  }

  /// `flow_method: exact`: samples carry the generator's own flows, the previous mask is
  /// warped by them, and a root without them is refused before training, naming the file.
  func testSamplesOnExactFlows() throws {
    let root = try Oracle.temporaryDirectory("segkit-mask-propagation-exact")
    defer { try? FileManager.default.removeItem(at: root) }
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames, options.objects) = (1, 0, 3, 1)
    (options.width, options.height, options.seed) = (48, 32, 6)
    try Synthetic.writeVideo(to: root, options: options)
    let dataset = try VideoDataset.davis2017(root: root, split: "train")
    let sequence = dataset.sequences[0]
    let flows = ExactFlows(root: root)
    try flows.prepare(dataset.sequences)
    let drawn = Synthetic.videoFlows(seed: 6, split: "train", index: 0, frames: 3, width: 48, height: 32, objects: 1)
    let (backward, forward) = try flows.flows(of: sequence, frame: 1)
    XCTAssertEqual(backward, drawn.backward[0], "frame 1 → 0 as drawn")
    XCTAssertEqual(forward, drawn.forward[1], "frame 1 → 2 as drawn")
    XCTAssertNil(try flows.flows(of: sequence, frame: 0).backward)
    XCTAssertNil(try flows.flows(of: sequence, frame: 2).forward)

    let source = try MaskPropagationSource(dataset: dataset, flows: flows, perturbation: .none)
    let sample = try source.loadSample(at: 1)
    var previous = try ImageIO.readLabel(XCTUnwrap(sequence.frames[0].label?.url))
    previous.pixels = previous.pixels.map { $0 == 1 ? 1 : 0 }
    XCTAssertEqual(sample.flows[.previous], drawn.backward[0])
    XCTAssertEqual(sample.masks[.previous]?.pixels, try FlowWarp.warp(mask: previous, by: drawn.backward[0]).pixels)

    let missing = Synthetic.flowFolders(of: root).forward.appendingPathComponent(sequence.name).appendingPathComponent("00001.flo")
    try FileManager.default.removeItem(at: missing)
    XCTAssertThrowsError(try flows.prepare(dataset.sequences)) { error in
      XCTAssertTrue("\(error)".contains(missing.path), "\(error)")
    }
  }
}
