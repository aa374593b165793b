import Foundation
import SegKitInference
import SegKitTestSupport
import XCTest

/// MaskRNN's recurrent inference: the first mask comes back as given, every later
/// frame gets a mask of its size from the previous one warped by DIS flow; misuse is
/// a clear error.
final class MaskRNNSegmenterTests: XCTestCase {
  func testSegmentsASequenceRecurrently() throws {
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames) = (0, 1, 4)
    (options.width, options.height, options.layout, options.seed) = (64, 48, .davis2016, 6)
    let root = try Oracle.temporaryDirectory("segkit-maskrnn")
    defer { try? FileManager.default.removeItem(at: root) }
    try Synthetic.writeVideo(to: root, options: options)
    let sequence = try VideoDataset.davis2016(root: root, split: "val").sequences[0]
    let frames = try sequence.frames.map { try ImageIO.read($0.image) }
    let firstMask = try ImageIO.readLabel(try XCTUnwrap(sequence.frames[0].label?.url))

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
}
