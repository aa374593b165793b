import Foundation
import SegKitData
import SegKitInference
import SegKitTestSupport
import XCTest

/// The dynamic key-frame segmenter's policies: every frame equals the image segmenter;
/// a fixed interval keys exactly every k-th frame of each region; a target follows
/// the decision network's prediction, and the dynamic target moves as DVSNet's; the
/// flow path is `WarpPath` on the flow network's output. Decision samples score the
/// warp path against the segmentation path as `RegionConfidence` does.
final class DynamicKeyFrameSegmenterTests: XCTestCase {
  static let frames: [Image] = try! Synthetic.streetSnippet(seed: 1, split: "val", index: 0, frames: 7, width: 64, height: 64).frames

  func makeSegmenter(_ policy: DynamicKeyFrameSegmenter.Policy, grid: RegionGrid = .whole, decisionOutput: Double? = nil,
                     flowScale: Double = 1) throws -> DynamicKeyFrameSegmenter
  {
    Torch.manualSeed(3)
    let image = try ImageSegmenter(model: try ModelZoo.make("fcn32s_resnet18", classes: 4))
    let flow = try FlowNetS(widths: .thin)
    var decision: DecisionNetwork?
    if let decisionOutput {
      // A decision network that predicts `decisionOutput` whatever it sees.
      let network = try DecisionNetwork(featureChannels: 384, grid: Size2(4, 8))
      let last = try XCTUnwrap(network.child("fc3") as? Linear)
      try Torch.withNoGrad {
        try last.weight.zero_()
        try last.bias?.fill_(decisionOutput)
      }
      decision = network
    }
    return try DynamicKeyFrameSegmenter(segmenter: image, flowNetwork: flow, decision: decision, grid: grid, policy: policy,
                                        flowScale: flowScale)
  }

  func testEveryFrameIsTheImageSegmenter() throws {
    let segmenter = try makeSegmenter(.everyFrame)
    for frame in Self.frames.prefix(3) {
      let step = try segmenter.step(frame)
      let expected = try segmenter.segmenter.labels(frame)
      XCTAssertEqual(try step.labels.toArray(Int64.self), expected.pixels.map(Int64.init))
      XCTAssertEqual(step.segmented, [true])
    }
    XCTAssertEqual(segmenter.counts, .init(frames: 3, segmentationSteps: 3, flowSteps: 0))
  }

  func testFixedIntervalKeysEveryKthFrameOfEachRegion() throws {
    let segmenter = try makeSegmenter(.fixedInterval(3), grid: try RegionGrid(rows: 2, columns: 2, overlap: 8))
    var keyed: [[Bool]] = []
    for frame in Self.frames { keyed.append(try segmenter.step(frame).segmented) }
    XCTAssertEqual(keyed.map { $0 == [true, true, true, true] }, [true, false, false, true, false, false, true])
    XCTAssertEqual(segmenter.counts, .init(frames: 7, segmentationSteps: 12, flowSteps: 16))
    segmenter.reset()
    XCTAssertEqual(try segmenter.step(Self.frames[4]).segmented, [true, true, true, true], "a new video starts with keys")
  }

  func testFlowPathWarpsTheKeyLogits() throws {
    for scale in [1.0, 2.0] {
      let segmenter = try makeSegmenter(.fixedInterval(10), flowScale: scale)
      _ = try segmenter.step(Self.frames[0])
      let step = try segmenter.step(Self.frames[2])
      XCTAssertEqual(step.segmented, [false])
      let key = try segmenter.segmenter.scores(Self.frames[0])
      let pixels = { (image: Image) in try (image.rgb().tensor() * 255).unsqueeze(0) }
      let output = try Torch.withInferenceMode {
        try segmenter.flowNetwork.output(from: try pixels(Self.frames[2]), to: try pixels(Self.frames[0]), scale: scale)
      }
      XCTAssertEqual(output.flow2.shape, [1, 2, 16 * Int(scale), 16 * Int(scale)], "the flow at 1/4 of the scaled frame")
      let warped = try WarpPath.scores(keyLogits: key, flowToKey: try output.flow2 * 5, size: Size2(64, 64))
      XCTAssertEqual(try step.labels.toArray(Int64.self), try warped.argmax(dim: 1).toArray(Int64.self), "scale \(scale)")
    }
  }

  func testTargetFollowsTheDecisionNetwork() throws {
    let confident = try makeSegmenter(.target(50, dynamic: false), decisionOutput: 80)
    for frame in Self.frames.prefix(4) { _ = try confident.step(frame) }
    XCTAssertEqual(confident.counts, .init(frames: 4, segmentationSteps: 1, flowSteps: 3))
    let last = try confident.step(Self.frames[4])
    XCTAssertEqual(try XCTUnwrap(last.predictedScores[0]), 80, accuracy: 1e-4)

    let doubtful = try makeSegmenter(.target(50, dynamic: false), decisionOutput: 20)
    for frame in Self.frames.prefix(4) { _ = try doubtful.step(frame) }
    XCTAssertEqual(doubtful.counts, .init(frames: 4, segmentationSteps: 4, flowSteps: 0))

    // Dynamic: 1 lower per segmentation step, 0.1 higher per flow step.
    let dynamic = try makeSegmenter(.target(81, dynamic: true), decisionOutput: 80)
    for frame in Self.frames.prefix(5) { _ = try dynamic.step(frame) }
    // Frame 0 keys (81 → 80); 80 is not below 80, so frame 1 warps (→ 80.1); frame 2 keys (→ 79.1), then warps.
    XCTAssertEqual(dynamic.counts, .init(frames: 5, segmentationSteps: 2, flowSteps: 3))
    XCTAssertEqual(dynamic.targets.count, 1, "one target per region")
    XCTAssertEqual(dynamic.targets[0], 79.3, accuracy: 1e-9)
    dynamic.reset()
    XCTAssertEqual(try makeSegmenter(.target(81, dynamic: true), decisionOutput: 80).targets, [], "targets start at the first frame")
    _ = try dynamic.step(Self.frames[0])
    XCTAssertEqual(dynamic.targets, [80], "a new video restores the target")
    XCTAssertThrowsError(try makeSegmenter(.target(50, dynamic: false)), "a target without a decision network")
    XCTAssertThrowsError(try makeSegmenter(.fixedInterval(0)))
  }

  /// DVSNet keeps one dynamic target per region: each moves with its own region's steps.
  func testDynamicTargetsArePerRegion() throws {
    let segmenter = try makeSegmenter(.target(81, dynamic: true), grid: try RegionGrid(rows: 1, columns: 2, overlap: 0), decisionOutput: 80.5)
    var history: [[Bool]] = []
    for frame in Self.frames { history.append(try segmenter.step(frame).segmented) }
    XCTAssertEqual(segmenter.targets.count, 2)
    for region in 0..<2 {
      let segmented = history.filter { $0[region] }.count, warped = history.count - segmented
      XCTAssertEqual(segmenter.targets[region], 81 - Double(segmented) + 0.1 * Double(warped), accuracy: 1e-9, "region \(region)")
    }
  }

  func testDecisionSamplesScoreTheWarpPath() throws {
    let segmenter = try makeSegmenter(.everyFrame, grid: try RegionGrid(rows: 1, columns: 2, overlap: 0))
    let byKey = try segmenter.decisionSamples(current: Self.frames[3], keys: [Self.frames[3], Self.frames[1]])
    XCTAssertEqual(byKey.map(\.count), [2, 2])
    XCTAssertEqual(try byKey[0].map { try XCTUnwrap($0.score) }, [100, 100], "a frame is its own perfect key")
    let samples = byKey[1]
    // 64×32 regions: conv6_1 would be one cell, so the features are conv4_1's 4×4 (the deepest covering 4×8 at least as far as any).
    XCTAssertEqual(samples[0].features.shape, [1, 192, 4, 4])
    // The right half, by hand.
    let crop = { (image: Image) in try (image.rgb().tensor() * 255).unsqueeze(0).narrow(dim: 3, start: 32, length: 32) }
    let normalized = { (image: Image) in try segmenter.segmenter.normalization.batch(image).narrow(dim: 3, start: 32, length: 32) }
    let output = try Torch.withInferenceMode { try segmenter.flowNetwork.output(from: try crop(Self.frames[3]), to: try crop(Self.frames[1])) }
    let warped = try WarpPath.scores(keyLogits: try segmenter.segmenter.scores(batch: try normalized(Self.frames[1])),
                                     flowToKey: try output.flow2 * 5, size: Size2(64, 32)).argmax(dim: 1)
    let reference = try segmenter.segmenter.scores(batch: try normalized(Self.frames[3])).argmax(dim: 1)
    let expected = try XCTUnwrap(try RegionConfidence.score(warped, reference: reference))
    XCTAssertEqual(try XCTUnwrap(samples[1].score), expected, accuracy: 1e-9)
    XCTAssertTrue(try samples[1].features.allClose(output.conv4_1, rtol: 1e-5, atol: 1e-6))
  }
}
