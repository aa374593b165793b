import Foundation
import SegKitInference
import SegKitModels
import SegKitTestSupport
import XCTest

/// Nothing a command reads is lost to what it writes: an output that names one of
/// the command's inputs (by path, link or hard link) is refused, a device is written
/// into rather than replaced, a video's earlier masks are kept unless --force,
/// and no output folder lies inside the dataset being read.
final class SafeOutputCommandTests: XCTestCase {
  var root: URL!

  override func setUpWithError() throws {
    root = try Oracle.temporaryDirectory("segkit-safe-output")
    try SlowTest.skipInFastTier()
  }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  func testAnOutputNeverReplacesAnInput() throws {
    let weights = root.appendingPathComponent("decision.safetensors")
    try DecisionNetworkFile.write(try DecisionNetwork(featureChannels: 4, grid: Size2(2, 2)), to: weights)
    let hard = root.appendingPathComponent("hard.safetensors"), soft = root.appendingPathComponent("soft.safetensors")
    try FileManager.default.linkItem(at: weights, to: hard)
    try FileManager.default.createSymbolicLink(at: soft, withDestinationURL: weights)
    let original = try Data(contentsOf: weights)
    for out in [weights, hard, soft] {
      let refused = try SegKitCommand.run(["export", "--decision", weights.path, "--out", out.path])
      XCTAssertEqual(refused.status, 1, refused.error)
      XCTAssertTrue(refused.error.contains("\(out.path): is one of this command's inputs"), refused.error)
    }
    XCTAssertEqual(try Data(contentsOf: weights), original)

    // flow warp --out equal to its --flow.
    let flow = root.appendingPathComponent("f.flo"), mask = root.appendingPathComponent("mask.png")
    try FlowFile.write(try FlowField(width: 4, height: 3, values: [Float](repeating: 0.5, count: 24)), to: flow)
    try ImageIO.writePNG(try Image(width: 4, height: 3, channels: 1, pixels: [UInt8](repeating: 1, count: 12)), to: mask)
    let flowBytes = try Data(contentsOf: flow)
    let warp = try SegKitCommand.run(["flow", "warp", "--mask", mask.path, "--flow", flow.path, "--out", flow.path])
    XCTAssertEqual(warp.status, 1, warp.error)
    XCTAssertTrue(warp.error.contains("is one of this command's inputs"), warp.error)
    XCTAssertEqual(try Data(contentsOf: flow), flowBytes)

    // A device stays a device (as root, renaming over /dev/null would replace it).
    let device = try SegKitCommand.run(["export", "--decision", weights.path, "--out", "/dev/null"])
    XCTAssertEqual(device.status, 0, device.error)
    var info = stat()
    XCTAssertEqual(stat("/dev/null", &info), 0)
    XCTAssertEqual(info.st_mode & S_IFMT, S_IFCHR)
    XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: root.path)),
                   ["decision.safetensors", "hard.safetensors", "soft.safetensors", "f.flo", "mask.png"], "nothing partial")
  }

  func testVideoResultsAndDatasetsAreKept() throws {
    let data = root.appendingPathComponent("davis")
    let synth = try SegKitCommand.run(["data", "synth", "--kind", "video", "--out", data.path, "--train", "0", "--val", "1",
                                       "--frames", "3", "--image-size", "32x48", "--objects", "2"])
    XCTAssertEqual(synth.status, 0, synth.error)
    let parent = root.appendingPathComponent("parent.safetensors")
    try StateDict([("w", try Tensor([1], shape: [1]))]).save(to: parent)
    let annotations = data.appendingPathComponent("Annotations/480p")
    func snapshot() throws -> [String] {
      try FileManager.default.subpathsOfDirectory(atPath: annotations.path).sorted()
    }
    let before = try snapshot()
    for overwrite in [[], ["--force"]] {
      let inside = try SegKitCommand.run(["vos", "segment", "--parent", parent.path, "--model", "unet_resnet18", "--davis", data.path,
                                          "--year", "2017", "--out", annotations.path, "--steps", "1"] + overwrite)
      XCTAssertEqual(inside.status, 64, inside.error)
      XCTAssertTrue(inside.error.contains("is inside the DAVIS dataset being read"), inside.error)
    }
    XCTAssertEqual(try snapshot(), before, "the ground truth is untouched")

    // A folder of the user's where the video's masks would go is kept unless --force.
    let out = root.appendingPathComponent("out"), mine = out.appendingPathComponent("clip/notes.txt")
    try FileManager.default.createDirectory(at: mine.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data("mine".utf8).write(to: mine)
    let sequence = try XCTUnwrap(try VideoDataset.davis2017(root: data, split: "val").sequences.first)
    let video = root.appendingPathComponent("clip.mp4")
    let writer = try VideoWriter(url: video, width: 48, height: 32, fps: 10)
    for frame in sequence.frames { try writer.write(try ImageIO.read(frame.image)) }
    try writer.finish()
    let kept = try SegKitCommand.run(["vos", "segment", "--parent", parent.path, "--model", "unet_resnet18", "--video", video.path,
                                      "--first-mask", try XCTUnwrap(sequence.frames.first?.label?.url).path, "--out", out.path])
    XCTAssertEqual(kept.status, 64, kept.error)
    XCTAssertTrue(kept.error.contains("\(out.appendingPathComponent("clip").path) exists: --force replaces it"), kept.error)
    XCTAssertEqual(try String(contentsOf: mine, encoding: .utf8), "mine")
  }

  /// A run started from its own final weights would end by writing over them: refused
  /// before training, not after it.
  func testARunNeverEndsOverTheWeightsItStartedFrom() throws {
    let data = root.appendingPathComponent("voc"), run = root.appendingPathComponent("run")
    let synth = try SegKitCommand.run(["data", "synth", "--kind", "semantic", "--out", data.path, "--train", "2", "--val", "0",
                                       "--image-size", "64"])
    XCTAssertEqual(synth.status, 0, synth.error)
    let common = ["train", "--run", run.path, "--plain", "--set", "dataset=pascal_voc", "--set", "dataset_dir=\(data.path)",
                  "--set", "val_split=", "--set", "model=fcn32s_resnet18", "--set", "train_crop_size=[64,64]",
                  "--set", "train_batch_size=2", "--set", "training_number_of_steps=1", "--set", "workers=0"]
    let first = try SegKitCommand.run(common)
    XCTAssertEqual(first.status, 0, first.error)
    let weights = run.appendingPathComponent("model.safetensors")
    let before = try Data(contentsOf: weights)
    let again = try SegKitCommand.run(common + ["--set", "initial_checkpoint=\(weights.path)"])
    XCTAssertEqual(again.status, 1, again.error)
    XCTAssertTrue(again.error.contains("\(weights.path): is one of this command's inputs"), again.error)
    XCTAssertEqual(try Data(contentsOf: weights), before)
  }
}
