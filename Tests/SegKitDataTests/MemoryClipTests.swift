import Foundation
@testable import SegKitData
import SegKitTestSupport
import XCTest

/// XMem's training clips: its frame sampling, the per-frame jitter (affine and thin-plate
/// warp) and still images made into sequences of several objects.
final class MemoryClipTests: XCTestCase {
  /// Every draw has distinct frames, each within the jump of another, sorted one way or
  /// the other; both directions occur; a jump of 1 gives consecutive frames.
  func testClipFramesFollowXMemsSampling() {
    var random = SeededRandom(seed: 7)
    var directions: Set<Bool> = []
    for trial in 0..<200 {
      let (count, length, jump) = (10 + trial % 30, 2 + trial % 7, 1 + trial % 6)
      let frames = VideoClipSource.drawFrames(count: count, length: length, maximumJump: jump, random: &random)
      XCTAssertEqual(frames.count, length)
      XCTAssertEqual(Set(frames).count, length, "distinct frames \(frames)")
      XCTAssertTrue(frames.allSatisfy { (0..<count).contains($0) })
      let sorted = frames.sorted()
      XCTAssertTrue(frames == sorted || frames == Array(sorted.reversed()), "\(frames)")
      if length > 1 { directions.insert(frames == sorted) }
      for (i, frame) in sorted.enumerated().dropFirst() {
        // Each frame was drawn within the jump of an earlier one, so sorted neighbours are at most the jump apart.
        XCTAssertLessThanOrEqual(frame - sorted[i - 1], jump, "\(sorted) jump \(jump)")
      }
      if jump == 1 { XCTAssertEqual(sorted.last! - sorted.first!, length - 1) }
    }
    XCTAssertEqual(directions, [true, false], "clips run forward and reversed")
  }

  /// The thin-plate spline passes through its control points; jitter keeps label values
  /// (nearest neighbour) and the identity leaves a frame unchanged.
  func testJitterAndThinPlateSpline() throws {
    let from = [(0.1, 0.2), (0.8, 0.3), (0.5, 0.9), (0.3, 0.6), (0.7, 0.7)].map { (x: $0.0, y: $0.1) }
    let to = from.map { (x: $0.x + 0.03, y: $0.y - 0.02 * $0.x) }
    let spline = try XCTUnwrap(ThinPlateSpline(from: from, to: to))
    for (p, q) in zip(from, to) {
      let (x, y) = spline.apply(p.x, p.y)
      XCTAssertEqual(x, q.x, accuracy: 1e-9)
      XCTAssertEqual(y, q.y, accuracy: 1e-9)
    }
    let (width, height) = (40, 30)
    let image = try Image(width: width, height: height, channels: 3, pixels: (0..<(width * height * 3)).map { UInt8($0 % 251) })
    let label = try Image(width: width, height: height, channels: 1,
                          pixels: (0..<(width * height)).map { i in (10..<25).contains(i % width) && (8..<20).contains(i / width) ? 3 : 0 })
    var random = SeededRandom(seed: 1)
    let unchanged = try FrameJitter().apply(image: image, label: label, random: &random)
    XCTAssertEqual(unchanged.image.pixels, image.pixels)
    var jitter = FrameJitter.staticImage
    jitter.deformationProbability = 1
    let moved = try jitter.apply(image: image, label: label, random: &random)
    XCTAssertEqual(Set(moved.label.pixels), [0, 3], "labels are never blended")
    XCTAssertNotEqual(moved.label.pixels, label.pixels)
    let area = label.pixels.filter { $0 == 3 }.count, movedArea = moved.label.pixels.filter { $0 == 3 }.count
    XCTAssertEqual(Double(movedArea), Double(area), accuracy: 0.35 * Double(area), "a small warp keeps the object's size")
    XCTAssertThrowsError(try jitter.apply(image: image, label: try Image(width: 3, height: 3, channels: 1), random: &random))
  }

  /// Video clips read annotated frames with object ids (void as background); static
  /// sequences paste extra images' foregrounds as objects 2, 3; the same seed gives the
  /// same clip, another seed another.
  func testClipsFromVideosAndStillImages() throws {
    let root = try Oracle.temporaryDirectory("segkit-memory-clips")
    defer { try? FileManager.default.removeItem(at: root) }
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames, options.width, options.height) = (2, 0, 9, 48, 32)
    (options.objects, options.seed, options.writeFlow) = (2, 5, false)
    try Synthetic.writeVideo(to: root, options: options)
    let videos = try VideoDataset.davis2017(root: root, split: "train")
    let clips = try VideoClipSource(dataset: videos, length: 4, maximumJump: { _ in 2 })
    XCTAssertEqual(clips.count, 2)
    let clip = try clips.loadSample(at: 1, epoch: 0, seed: 11)
    XCTAssertEqual(clip.frames.keys.sorted(), [.clip(1), .clip(2), .clip(3)])
    XCTAssertEqual(clip.masks.keys.sorted(), [.clip(1), .clip(2), .clip(3)])
    XCTAssertTrue(Set(try XCTUnwrap(clip.label).pixels).isSubset(of: [0, 1, 2]))
    XCTAssertEqual(try clips.loadSample(at: 1, epoch: 0, seed: 11).image.pixels, clip.image.pixels)
    XCTAssertNotEqual(try clips.loadSample(at: 1, epoch: 1, seed: 12).image.pixels, clip.image.pixels)
    XCTAssertThrowsError(try VideoClipSource(dataset: videos, length: 10, maximumJump: { _ in 2 })) { error in
      XCTAssertTrue("\(error)".contains("10 annotated frames"), "\(error)")
    }

    let stills = try StaticSequenceSource(base: videos.frames, length: 3, maximumObjects: 3)
    var objectCounts: Set<Int> = []
    for seed in 0..<12 {
      let sequence = try stills.loadSample(at: seed % stills.count, epoch: 0, seed: UInt64(seed))
      XCTAssertEqual(sequence.frames.count, 2)
      let ids = Set(try XCTUnwrap(sequence.label).pixels).subtracting([0])
      XCTAssertTrue(ids.isSubset(of: [1, 2, 3]), "\(ids)")
      objectCounts.insert(ids.count)
    }
    XCTAssertTrue(objectCounts.count > 1, "one to three objects per sequence, got \(objectCounts)")
  }
}
