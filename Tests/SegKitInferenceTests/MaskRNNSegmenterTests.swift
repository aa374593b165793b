import Foundation
import SegKitInference
import SegKitTestSupport
import XCTest

/// MaskRNN's recurrent inference: the first mask comes back as given, every later
/// frame gets a mask of its size from the previous one warped by DIS flow; misuse is
/// a clear error.
final class MaskRNNSegmenterTests: XCTestCase {
  /// The frames and first mask of one synthetic 64×48 DAVIS 2016 sequence.
  static func sequence(frames count: Int, seed: UInt64) throws -> (frames: [Image], firstMask: Image) {
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames) = (0, 1, count)
    (options.width, options.height, options.layout, options.seed) = (64, 48, .davis2016, seed)
    let root = try Oracle.temporaryDirectory("segkit-maskrnn")
    defer { try? FileManager.default.removeItem(at: root) }
    try Synthetic.writeVideo(to: root, options: options)
    let sequence = try VideoDataset.davis2016(root: root, split: "val").sequences[0]
    return (try sequence.frames.map { try ImageIO.read($0.image) },
            try ImageIO.readLabel(try XCTUnwrap(sequence.frames[0].label?.url)))
  }

  func testSegmentsASequenceRecurrently() throws {
    let (frames, firstMask) = try Self.sequence(frames: 4, seed: 6)

    Torch.manualSeed(12)
    let segmenter = try MaskRNNSegmenter(model: try MaskRNN(encoder: "resnet18"), flowPreset: .ultrafast)
    XCTAssertThrowsError(try segmenter.next(frames[1])) { XCTAssertTrue("\($0)".contains("has not begun"), "\($0)") }
    XCTAssertThrowsError(try segmenter.start(firstFrame: frames[0], mask: nil))
    let masks = try segmenter.segment(frames, firstMask: firstMask)
    XCTAssertEqual(masks.count, 4)
    XCTAssertEqual(masks[0].pixels, firstMask.pixels.map { $0 == 0 ? 0 : 1 })
    for mask in masks {
      XCTAssertEqual([mask.width, mask.height, mask.channels], [64, 48, 1])
      XCTAssertTrue(mask.pixels.allSatisfy { $0 <= 1 })
    }
    XCTAssertGreaterThan(segmenter.flowSeconds, 0)
    // Frame by frame (no look-ahead) gives masks of the same size; a frame of another size is refused.
    _ = try segmenter.start(firstFrame: frames[0], mask: firstMask)
    XCTAssertEqual(try segmenter.next(frames[1]).width, 64)
    XCTAssertThrowsError(try segmenter.next(Image(width: 32, height: 48, channels: 3))) {
      XCTAssertTrue("\($0)".contains("32×48 frame in a 64×48 sequence"), "\($0)")
    }
  }

  /// The ablation's readouts: each carries its own part's mask, and on the first step
  /// (one previous mask for all) each gives that part's probability, computed here
  /// from the network directly.
  func testReadoutsGiveEachPartsProbability() throws {
    let (frames, firstMask) = try Self.sequence(frames: 3, seed: 7)

    Torch.manualSeed(13)
    let model = try MaskRNN(encoder: "resnet18")
    // Freshly initialised streams give almost the same logits; opposite fuse biases tell them apart.
    try Torch.withNoGrad {
      for (name, parameter) in model.namedParameters() where name == "appearance.fuse.bias" || name == "flow.fuse.bias" {
        try parameter.fill_(name.hasPrefix("appearance") ? 2 : -2)
      }
    }
    let first = try MaskRNNSegmenter(model: model, flowPreset: .ultrafast)
    _ = try first.start(firstFrame: frames[0], mask: firstMask)
    let flows = try first.flows(frames[1], following: frames[2])
    let warped = try FlowWarp.warp(mask: try Image.objectMask(firstMask, of: frames[0]), by: flows.backward)
    let magnitudes = try [flows.backward, try XCTUnwrap(flows.forward)].map { try $0.tensor().pow(2).sum(dim: 0, keepDim: true).sqrt() }
    let output = try Torch.withInferenceMode {
      try model.forward(image: model.inputNormalization.batch(frames[1]),
                        warpedMask: (try warped.labelTensor() .!= 0).to(.float32).unsqueeze(0).unsqueeze(0),
                        flowMagnitudes: Tensor.cat(magnitudes, dim: 0).unsqueeze(0))
    }
    let expected: [MaskRNNSegmenter.Readout: Tensor] = [
      .appearance: output.appearance.out, .flow: output.flow.out, .streams: output.fused, .full: output.out,
    ]
    XCTAssertNotNil(output.box, "the localiser gates the full readout")
    for readout in MaskRNNSegmenter.Readout.allCases {
      let segmenter = try MaskRNNSegmenter(model: model, flowPreset: .ultrafast, readout: readout)
      _ = try segmenter.start(firstFrame: frames[0], mask: firstMask)
      let probability = try segmenter.advance(frames[1], following: frames[2], flows: flows)
      let logits = try XCTUnwrap(expected[readout])
      let difference = try (probability - logits.sigmoid().squeeze(dim: 0).squeeze(dim: 0)).abs().max().item()
      XCTAssertLessThan(difference, 1e-5, "\(readout)")
    }
    // The streams' logits differ, so the comparisons above tell the readouts apart.
    let streamsApart = try (output.appearance.out - output.flow.out).abs().max().item()
    XCTAssertGreaterThan(streamsApart, 1e-3)
  }
}

/// Several objects: what each recurrence carries on is its object's part of the merged
/// instance map, not its own thresholded mask.
final class MaskRNNObjectsSegmenterTests: XCTestCase {
  /// A MaskRNN whose fused logits are `logit` everywhere, whatever its inputs: all
  /// its fuse weights zero, the appearance stream's fuse bias `logit`.
  static func constantNetwork(logit: Double) throws -> MaskRNN {
    let model = try MaskRNN(encoder: "resnet18", localisation: false)
    try Torch.withNoGrad {
      for (name, parameter) in model.namedParameters() where name.hasSuffix("fuse.weight") || name.hasSuffix("fuse.bias") {
        try parameter.fill_(name == "appearance.fuse.bias" ? logit : 0)
      }
    }
    return model
  }

  /// Two objects apart in the first frame. Object 2's recurrence is confident
  /// everywhere (as one whose warped mask has been dragged onto object 1), object 1's
  /// more so. Carrying its own mask, object 2 would take object 1's pixels into the
  /// next frame too; carrying the merged map, it keeps only what it won (nothing),
  /// and the two carried masks never overlap.
  func testEachObjectCarriesItsPartOfTheMergedMap() throws {
    let (frames, _) = try MaskRNNSegmenterTests.sequence(frames: 3, seed: 8)
    var first = Image(width: 64, height: 48, channels: 1)
    for y in 10..<20 {
      for x in 5..<15 { first.pixels[y * 64 + x] = 1 }
      for x in 40..<50 { first.pixels[y * 64 + x] = 2 }
    }
    Torch.manualSeed(14)
    let networks = [1: try Self.constantNetwork(logit: 4), 2: try Self.constantNetwork(logit: 2)]
    let segmenter = MaskRNNObjectsSegmenter(model: try XCTUnwrap(networks[1]), flow: .dis(.ultrafast))
    segmenter.prepare = { _, _, mask, _ in
      try XCTUnwrap(networks[mask.pixels.enumerated().contains { $0.element != 0 && $0.offset % 64 >= 40 } ? 2 : 1])
    }
    XCTAssertEqual(try segmenter.start(firstFrame: frames[0], mask: first).pixels, first.pixels)
    for frame in frames.dropFirst() {
      let merged = try segmenter.next(frame)
      XCTAssertTrue(merged.pixels.allSatisfy { $0 == 1 }, "object 1 wins every pixel")
      let carried = try segmenter.objects.map { try XCTUnwrap($0.segmenter.carriedMask).pixels }
      XCTAssertEqual(segmenter.objects.map(\.id), [1, 2])
      // (Boolean comparisons: a failure would print 3,072 pixels otherwise.)
      XCTAssertTrue(carried[0] == merged.pixels.map { $0 == 1 ? 1 : 0 }, "object 1 carries its part of the merged map")
      XCTAssertTrue(carried[1] == merged.pixels.map { $0 == 2 ? 1 : 0 }, "object 2 carries its part of the merged map, not its own mask")
      XCTAssertFalse(zip(carried[0], carried[1]).contains { $0 == 1 && $1 == 1 }, "the carried masks overlap")
    }
  }

  /// A network prepared on the first frame (fine-tuned, in `vos segment --steps`) is
  /// given the first frame's flow to the second when that frame is known.
  func testPreparationReadsTheFirstFramesForwardFlow() throws {
    let (frames, firstMask) = try MaskRNNSegmenterTests.sequence(frames: 3, seed: 9)
    Torch.manualSeed(15)
    let segmenter = MaskRNNObjectsSegmenter(model: try Self.constantNetwork(logit: 1), flow: .dis(.ultrafast))
    var given: [FlowField?] = []
    segmenter.prepare = { model, _, _, flow in
      given.append(flow)
      return model
    }
    _ = try segmenter.start(firstFrame: frames[0], mask: firstMask, following: frames[1])
    let expected = try FlowMethod.dis(.ultrafast).compute(frames[0], frames[1])
    XCTAssertEqual(given.count, 1)
    let flow = try XCTUnwrap(given.first ?? nil)
    XCTAssertEqual(flow.values, expected.values, "the flow from frame 0 to frame 1")
    XCTAssertGreaterThan(flow.values.map(abs).max() ?? 0, 0.1, "the synthetic objects move")
    _ = try segmenter.start(firstFrame: frames[0], mask: firstMask)
    XCTAssertEqual(given.count, 2)
    XCTAssertNil(given[1] ?? nil, "without the second frame there is no flow")
  }

  /// `--flow exact`: the generator's flow files, frame by frame, stand in for computed
  /// flow (the same masks as a flow method that returns those files' flows); a missing
  /// file is an error naming it.
  func testExactFlowsAreReadFromTheGeneratorsFiles() throws {
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames) = (0, 1, 4)
    (options.width, options.height, options.objects, options.seed) = (48, 32, 2, 10)
    let root = try Oracle.temporaryDirectory("segkit-exact-flow")
    defer { try? FileManager.default.removeItem(at: root) }
    try Synthetic.writeVideo(to: root, options: options)
    let sequence = try VideoDataset.davis2017(root: root, split: "val").sequences[0]
    let frames = try sequence.frames.map { try ImageIO.read($0.image) }
    let firstMask = try ImageIO.readLabel(try XCTUnwrap(sequence.frames[0].label?.url))
    let exact = MaskRNNFlowSource.exact(root: root).exactFlows(of: sequence.name)!
    let drawn = Synthetic.videoFlows(seed: 10, split: "val", index: 0, frames: 4, width: 48, height: 32, objects: 2)
    let flows = try exact.flows(frame: 2, hasNext: true)
    XCTAssertEqual(flows.backward, drawn.backward[1])
    XCTAssertEqual(flows.forward, drawn.forward[2])
    XCTAssertNil(try exact.flows(frame: 3, hasNext: false).forward)

    Torch.manualSeed(16)
    let model = try MaskRNN(encoder: "resnet18", localisation: false)
    func run(_ segmenter: MaskRNNObjectsSegmenter) throws -> [Image] {
      _ = try segmenter.start(firstFrame: frames[0], mask: firstMask, following: frames[1])
      return try (1..<4).map { try segmenter.next(frames[$0], following: $0 < 3 ? frames[$0 + 1] : nil) }
    }
    let refusing = FlowMethod(settings: FlowCache.Settings(method: "none"), parallel: false) { _, _ in
      throw InferenceError("no flow is computed with exact flows")
    }
    let fromFiles = MaskRNNObjectsSegmenter(model: model, flow: refusing)
    fromFiles.exactFlows = exact
    // The same flows through a flow method that knows which frames it is given.
    let lookingUp = FlowMethod(settings: FlowCache.Settings(method: "lookup"), parallel: false) { a, b in
      let (i, j) = (frames.firstIndex(of: a)!, frames.firstIndex(of: b)!)
      return j > i ? drawn.forward[i] : drawn.backward[i - 1]
    }
    XCTAssertEqual(try run(fromFiles), try run(MaskRNNObjectsSegmenter(model: model, flow: lookingUp)))

    let missing = exact.backward.appendingPathComponent("00002.flo")
    try FileManager.default.removeItem(at: missing)
    XCTAssertThrowsError(try run(fromFiles)) {
      XCTAssertTrue("\($0)".contains(missing.path) && "\($0)".contains("is missing"), "\($0)")
    }
  }
}
