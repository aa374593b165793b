import Foundation
import SegKitTestSupport
@testable import SegKitTraining
import XCTest

/// One-shot fine-tuning: a copy of the parent learns the first frame's object and
/// segments the sequence; nothing is written and the parent is left as it was.
final class OneShotTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  func testFineTunesACopyOnTheFirstFrameAndSegmentsTheSequence() throws {
    let root = try Oracle.temporaryDirectory("segkit-one-shot")
    defer { try? FileManager.default.removeItem(at: root) }
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames) = (0, 1, 4)
    (options.width, options.height, options.layout, options.seed) = (64, 48, .davis2016, 2)
    try Synthetic.writeVideo(to: root.appendingPathComponent("davis"), options: options)
    let sequence = try VideoDataset.davis2016(root: root.appendingPathComponent("davis"), split: "val").sequences[0]
    let frames = try sequence.frames.map { try ImageIO.read($0.image) }
    let masks = try sequence.frames.map { try ImageIO.readLabel(XCTUnwrap($0.label?.url)) }

    Torch.manualSeed(1)
    let parent = try StateDict(try ModelZoo.make("unet_resnet18", classes: 1).stateDict())
    let snapshot = try XCTUnwrap(parent[parent.names[0]]).clone()
    var settings = FineTuningSettings()
    (settings.steps, settings.learningRate) = (100, 1e-3)
    settings.augmentation = Augmentation()  // the frame as it is: the test asks that it be learnt
    let segmenter = try OneShotSegmenter(modelName: "unet_resnet18", parent: parent, settings: settings)
    XCTAssertThrowsError(try segmenter.next(frames[1]))
    XCTAssertThrowsError(try segmenter.start(firstFrame: frames[0], mask: nil))

    let before = try FileManager.default.contentsOfDirectory(atPath: root.path)
    let first = try segmenter.start(firstFrame: frames[0], mask: masks[0])
    XCTAssertEqual(first.pixels, masks[0].pixels.map { $0 == 0 ? 0 : 1 }, "the given mask, as 0/1")
    func iou(_ prediction: Image, _ truth: Image) -> Double {
      var (intersection, union) = (0, 0)
      for (p, t) in zip(prediction.pixels, truth.pixels) {
        if p != 0 && t != 0 { intersection += 1 }
        if p != 0 || t != 0 { union += 1 }
      }
      return union == 0 ? 1 : Double(intersection) / Double(union)
    }
    let fitted = try XCTUnwrap(segmenter.segmenter).labels(frames[0])
    print("one-shot: IoU of the fine-tuned copy on its first frame \(iou(fitted, masks[0])), on the last \(iou(try segmenter.next(frames[3]), masks[3]))")
    XCTAssertGreaterThan(iou(fitted, masks[0]), 0.8, "the first frame's object is learnt")
    for index in 1..<frames.count {
      let labels = try segmenter.next(frames[index])
      XCTAssertEqual([labels.width, labels.height], [64, 48])
      XCTAssertTrue(labels.pixels.allSatisfy { $0 <= 1 })
    }
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.path), before, "nothing written")
    XCTAssertTrue(try XCTUnwrap(parent[parent.names[0]]).allClose(snapshot, rtol: 0, atol: 0), "the parent is untouched")
  }

  /// MaskRNN's first-frame fine-tuning: a copy moves, the parent stays; OneShotSegmenter
  /// itself refuses a MaskRNN (it segments images, MaskRNN sequences).
  func testMaskRNNFineTunedCopy() throws {
    Torch.manualSeed(6)
    let parent = try StateDict(try ModelZoo.make("maskrnn_resnet18", classes: 1).stateDict())
    let snapshot = try XCTUnwrap(parent["flow.side_prep.0.weight"]).clone()
    var frame = Image(width: 48, height: 32, channels: 3), object = Image(width: 48, height: 32, channels: 1)
    for i in 0..<(48 * 32) {
      frame.pixels[3 * i] = UInt8(i % 251)
      object.pixels[i] = (i % 48) > 20 && (i / 48) > 10 ? 1 : 0
    }
    var settings = FineTuningSettings()
    (settings.steps, settings.learningRate) = (3, 1e-3)
    let tuned = try OneShotSegmenter.fineTunedCopy(modelName: "maskrnn_resnet18", parent: parent, firstFrame: frame, object: object,
                                                   settings: settings)
    XCTAssertTrue(tuned is MaskRNN)
    let moved = try XCTUnwrap(try tuned.stateDict().first { $0.0 == "appearance.side_prep.0.weight" }?.1)
    XCTAssertFalse(try moved.allClose(XCTUnwrap(parent["appearance.side_prep.0.weight"]), rtol: 0, atol: 0), "the copy is fine-tuned")
    XCTAssertTrue(try XCTUnwrap(parent["flow.side_prep.0.weight"]).allClose(snapshot, rtol: 0, atol: 0), "the parent is untouched")
    XCTAssertThrowsError(try OneShotSegmenter(modelName: "maskrnn_resnet18", parent: parent))
  }

  /// MaskRNN's first-frame fine-tuning reads the first frame's flow to the second as
  /// its flow to the next frame (tfvos gives frame 0 ‖f 0→1‖), zero to the previous
  /// one; the flow stream then learns from it, so the copies differ with and without.
  func testMaskRNNFineTuningReadsTheForwardFlow() throws {
    let (width, height) = (48, 32)
    var frame = Image(width: width, height: height, channels: 3), object = Image(width: width, height: height, channels: 1)
    var motion = [Float](repeating: 0, count: 2 * width * height)
    for i in 0..<(width * height) {
      frame.pixels[3 * i] = UInt8(i % 251)
      object.pixels[i] = (i % width) > 20 && (i / width) > 10 ? 1 : 0
      if object.pixels[i] == 1 { (motion[i], motion[width * height + i]) = (3, -4) }  // ‖f‖ = 5 on the object
    }
    let forward = try FlowField(width: width, height: height, values: motion)
    let source = FirstFrameWithPreviousMask(
      sample: Sample(name: "first", image: frame, label: object), count: 2, seed: 1, forwardFlow: forward)
    let sample = try source.loadSample(at: 0)
    XCTAssertEqual(sample.flows[.next]?.values, motion)
    XCTAssertEqual(sample.flows[.previous]?.values.allSatisfy { $0 == 0 }, true)
    let unknown = try FirstFrameWithPreviousMask(sample: Sample(name: "first", image: frame, label: object), count: 2, seed: 1)
      .loadSample(at: 0)
    XCTAssertEqual(unknown.flows[.next]?.values.allSatisfy { $0 == 0 }, true, "no second frame: zero flow")

    Torch.manualSeed(7)
    let parent = try StateDict(try ModelZoo.make("maskrnn_resnet18", classes: 1).stateDict())
    var settings = FineTuningSettings()
    (settings.steps, settings.learningRate) = (2, 1e-3)
    func flowStream(_ flow: FlowField?) throws -> Tensor {
      let tuned = try OneShotSegmenter.fineTunedCopy(
        modelName: "maskrnn_resnet18", parent: parent, firstFrame: frame, object: object, forwardFlow: flow, settings: settings)
      return try XCTUnwrap(try tuned.stateDict().first { $0.0 == "flow.backbone.conv1.weight" }?.1)
    }
    let withFlow = try flowStream(forward), withoutFlow = try flowStream(nil), again = try flowStream(forward)
    XCTAssertTrue(try withFlow.allClose(again, rtol: 0, atol: 0), "fine-tuning is deterministic")
    XCTAssertFalse(try withFlow.allClose(withoutFlow, rtol: 0, atol: 0), "the flow stream saw the flow")
    XCTAssertThrowsError(try flowStream(try FlowField(width: 8, height: 8, values: [Float](repeating: 0, count: 128)))) {
      XCTAssertTrue("\($0)".contains("8×8 flow for a 48×32 first frame"), "\($0)")
    }
  }
}
