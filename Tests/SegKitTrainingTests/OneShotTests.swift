import Foundation
import SegKitTestSupport
import SegKitTraining
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
}
