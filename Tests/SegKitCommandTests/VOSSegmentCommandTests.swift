import Foundation
import SegKitTestSupport
import SegKitTraining
import XCTest

/// `segkit vos segment` end to end: one-shot fine-tuning per object, the DAVIS results
/// layout that `segkit vos eval` scores, timings, and skipping finished sequences.
final class VOSSegmentCommandTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  func testSegmentsEverySequenceIntoTheResultsLayout() throws {
    let root = try Oracle.temporaryDirectory("segkit-vos-segment")
    defer { try? FileManager.default.removeItem(at: root) }
    Torch.manualSeed(2)
    let parent = root.appendingPathComponent("parent.safetensors")
    try StateDict(try ModelZoo.make("unet_resnet18", classes: 1).stateDict()).save(to: parent)
    for (year, objects) in [(2017, "2"), (2016, "1")] {
      let data = root.appendingPathComponent("davis\(year)"), results = root.appendingPathComponent("results\(year)")
      let synth = try SegKitCommand.run(["data", "synth", "--kind", "video", "--out", data.path, "--train", "0", "--val", "2",
                                         "--frames", "4", "--image-size", "32x48", "--objects", objects])
      XCTAssertEqual(synth.status, 0, synth.error)
      let arguments = ["vos", "segment", "--parent", parent.path, "--model", "unet_resnet18", "--davis", data.path,
                       "--year", "\(year)", "--out", results.path, "--steps", "3", "--device", "cpu"]
        // DAVIS 2016 segments in int8, calibrated on each first frame.
        + (year == 2016 ? ["--precision", "int8"] : [])
      let run = try SegKitCommand.run(arguments)
      XCTAssertEqual(run.status, 0, run.error)
      let dataset = year == 2016 ? try VideoDataset.davis2016(root: data, split: "val") : try VideoDataset.davis2017(root: data, split: "val")
      for sequence in dataset.sequences {
        for frame in sequence.frames {
          let name = try XCTUnwrap(frame.label?.url.lastPathComponent)
          let labels = try ImageIO.readLabel(results.appendingPathComponent("\(sequence.name)/\(name)"))
          XCTAssertEqual([labels.width, labels.height], [48, 32])
          XCTAssertTrue(Set(labels.pixels).isSubset(of: year == 2016 ? [0, 255] : [0, 1, 2]), "\(Set(labels.pixels))")
        }
      }
      let timings = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: results.appendingPathComponent("timing.json"))) as? [[String: Any]])
      XCTAssertEqual(timings.count, 2)
      XCTAssertEqual(timings.first?["objects"] as? Int, year == 2016 ? 1 : 2)
      let scored = try SegKitCommand.run(["vos", "eval", "--results", results.path, "--davis", data.path, "--year", "\(year)"])
      XCTAssertEqual(scored.status, 0, scored.error)
      XCTAssertTrue(scored.output.contains("J&F: "), scored.output)
      let again = try SegKitCommand.run(arguments)
      XCTAssertEqual(again.status, 0, again.error)
      XCTAssertTrue(again.output.contains("already done, skipped"), again.output)
      let kept = try JSONSerialization.jsonObject(with: Data(contentsOf: results.appendingPathComponent("timing.json"))) as? [[String: Any]]
      XCTAssertEqual(kept?.count, 2, "a rerun that skips keeps the earlier timings")
    }
    let bad = try SegKitCommand.run(["vos", "segment", "--parent", parent.path, "--model", "unet_resnet18", "--davis",
                                     root.appendingPathComponent("davis2016").path, "--year", "2016", "--out",
                                     root.appendingPathComponent("x").path, "--sequences", "nope"])
    XCTAssertNotEqual(bad.status, 0)
    XCTAssertTrue(bad.error.contains("'nope' is not a sequence"), bad.error)
  }

  /// A video and its first frame's mask: a palette PNG of object ids per frame and an
  /// overlay video, every frame segmented; bad first masks are clear errors.
  func testVideoWithAFirstFrameMask() throws {
    let root = try Oracle.temporaryDirectory("segkit-vos-video")
    defer { try? FileManager.default.removeItem(at: root) }
    Torch.manualSeed(2)
    let parent = root.appendingPathComponent("parent.safetensors")
    try StateDict(try ModelZoo.make("unet_resnet18", classes: 1).stateDict()).save(to: parent)
    let data = root.appendingPathComponent("davis")
    let synth = try SegKitCommand.run(["data", "synth", "--kind", "video", "--out", data.path, "--train", "0", "--val", "1",
                                       "--frames", "5", "--image-size", "32x48", "--objects", "2"])
    XCTAssertEqual(synth.status, 0, synth.error)
    let sequence = try XCTUnwrap(try VideoDataset.davis2017(root: data, split: "val").sequences.first)
    let video = root.appendingPathComponent("clip.mp4")
    let writer = try VideoWriter(url: video, width: 48, height: 32, fps: 10)
    for frame in sequence.frames { try writer.write(try ImageIO.read(frame.image)) }
    try writer.finish()
    let mask = try XCTUnwrap(sequence.frames.first?.label?.url)
    let out = root.appendingPathComponent("out")
    let once = ["vos", "segment", "--parent", parent.path, "--model", "unet_resnet18", "--video", video.path,
                "--steps", "2", "--device", "cpu", "--out", out.path]
    let common = once + ["--force"]
    let run = try SegKitCommand.run(once + ["--first-mask", mask.path])
    XCTAssertEqual(run.status, 0, run.error)
    XCTAssertTrue(run.output.contains("5 frames, 2 object(s)"), run.output)
    XCTAssertEqual(try VideoReader(out.appendingPathComponent("clip_overlay.mp4")).frameCount, 5)
    for index in 0..<5 {
      let labels = try ImageIO.readLabel(out.appendingPathComponent(String(format: "clip/%06d.png", index)))
      XCTAssertEqual([labels.width, labels.height], [48, 32])
      XCTAssertTrue(Set(labels.pixels).isSubset(of: [0, 1, 2]), "\(Set(labels.pixels))")
      if index == 0 { XCTAssertEqual(labels.pixels, try ImageIO.readLabel(mask).pixels, "the first frame keeps its mask") }
    }
    // The overlay video is an earlier result: kept unless --force.
    let again = try SegKitCommand.run(once + ["--first-mask", mask.path])
    XCTAssertNotEqual(again.status, 0)
    XCTAssertTrue(again.error.contains("clip_overlay.mp4 exists: --force replaces it"), again.error)

    let empty = root.appendingPathComponent("empty.png"), small = root.appendingPathComponent("small.png")
    try ImageIO.writePNG(try Image(width: 48, height: 32, channels: 1, pixels: [UInt8](repeating: 0, count: 48 * 32)), to: empty)
    try ImageIO.writePNG(try Image(width: 8, height: 8, channels: 1, pixels: [UInt8](repeating: 1, count: 64)), to: small)
    for (maskFile, message) in [(empty, "holds no object"), (small, "8×8"), (root.appendingPathComponent("none.png"), "none.png")] {
      let bad = try SegKitCommand.run(common + ["--first-mask", maskFile.path])
      XCTAssertNotEqual(bad.status, 0)
      XCTAssertTrue(bad.error.contains(message), bad.error)
    }
    let noMask = try SegKitCommand.run(common)
    XCTAssertNotEqual(noMask.status, 0)
    XCTAssertTrue(noMask.error.contains("--video needs --first-mask"), noMask.error)

    // The references' fine-tuning: SGD on the summed loss with OSVOS's per-layer rates (OSVOS models only).
    let osvos = root.appendingPathComponent("osvos.safetensors")
    try StateDict(try ModelZoo.make("osvos_resnet18", classes: 1).stateDict()).save(to: osvos)
    let reference = ["--optimizer", "sgd", "--learning-rate", "1e-8", "--loss-normalization", "sum", "--gradient-accumulation", "2",
                     "--weight-decay", "0.0002", "--reference-learning-rates", "--first-mask", mask.path]
    let sgd = try SegKitCommand.run(["vos", "segment", "--parent", osvos.path, "--model", "osvos_resnet18", "--video", video.path,
                                     "--steps", "2", "--device", "cpu", "--out", root.appendingPathComponent("sgd").path] + reference)
    XCTAssertEqual(sgd.status, 0, sgd.error)
    let notOSVOS = try SegKitCommand.run(common + reference)
    XCTAssertNotEqual(notOSVOS.status, 0)
    XCTAssertTrue(notOSVOS.error.contains("unet_resnet18 has no reference per-layer learning rates"), notOSVOS.error)
    let unknown = try SegKitCommand.run(common + ["--first-mask", mask.path, "--optimizer", "rmsprop"])
    XCTAssertNotEqual(unknown.status, 0)
    XCTAssertTrue(unknown.error.contains("--optimizer must be adam or sgd"), unknown.error)
  }

  /// Ctrl-C: the sequence in progress stops, the finished ones stay (with their
  /// timings), the exit status is 130, and a rerun segments only what is left.
  func testInterruptKeepsFinishedSequences() throws {
    let root = try Oracle.temporaryDirectory("segkit-vos-interrupt")
    defer { try? FileManager.default.removeItem(at: root) }
    Torch.manualSeed(2)
    let parent = root.appendingPathComponent("parent.safetensors")
    try StateDict(try ModelZoo.make("unet_resnet18", classes: 1).stateDict()).save(to: parent)
    let data = root.appendingPathComponent("davis"), results = root.appendingPathComponent("results")
    let synth = try SegKitCommand.run(["data", "synth", "--kind", "video", "--out", data.path, "--train", "0", "--val", "2",
                                       "--frames", "3", "--image-size", "32x48", "--objects", "1"])
    XCTAssertEqual(synth.status, 0, synth.error)
    let sequences = try VideoDataset.davis2016(root: data, split: "val").sequences
    let arguments = ["vos", "segment", "--parent", parent.path, "--model", "unet_resnet18", "--davis", data.path,
                     "--year", "2016", "--out", results.path, "--device", "cpu", "--plain"]
    let first = try SegKitCommand.run(arguments + ["--steps", "2", "--sequences", sequences[0].name])
    XCTAssertEqual(first.status, 0, first.error)
    XCTAssertTrue(DAVISSegmentation.isFinished(sequences[0], in: results))

    // The rerun skips the first sequence and is interrupted fine-tuning the second.
    let process = Process()
    process.executableURL = try SegKitCommand.executable()
    process.arguments = arguments + ["--steps", "1000000"]
    let log = root.appendingPathComponent("stdout")
    try Data().write(to: log)
    process.standardOutput = try FileHandle(forWritingTo: log)
    process.standardError = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline && !((try? String(contentsOf: log, encoding: .utf8))?.contains("already done, skipped") ?? false) {
      Thread.sleep(forTimeInterval: 0.1)
    }
    Thread.sleep(forTimeInterval: 0.5)
    kill(process.processIdentifier, SIGINT)
    process.waitUntilExit()
    let text = try String(contentsOf: log, encoding: .utf8)
    XCTAssertEqual(process.terminationStatus, 130, text)
    XCTAssertTrue(text.contains("[2/2] \(sequences[1].name): stopped; it will be segmented again on a rerun"), text)
    XCTAssertTrue(DAVISSegmentation.isFinished(sequences[0], in: results))
    XCTAssertFalse(DAVISSegmentation.isFinished(sequences[1], in: results))
    let timings = try JSONSerialization.jsonObject(with: Data(contentsOf: results.appendingPathComponent("timing.json"))) as? [[String: Any]]
    XCTAssertEqual(timings?.map { $0["sequence"] as? String }, [sequences[0].name], "the finished sequence keeps its timing")
  }

  /// A MaskRNN network segments DAVIS recurrently (per object, merged) into the same
  /// results layout, which vos eval scores.
  func testMaskRNNSegmentsRecurrently() throws {
    let root = try Oracle.temporaryDirectory("segkit-vos-maskrnn")
    defer { try? FileManager.default.removeItem(at: root) }
    Torch.manualSeed(4)
    let weights = root.appendingPathComponent("maskrnn.safetensors")
    try StateDict(try ModelZoo.make("maskrnn_resnet18", classes: 1).stateDict()).save(to: weights)
    let data = root.appendingPathComponent("davis"), results = root.appendingPathComponent("results")
    let synth = try SegKitCommand.run(["data", "synth", "--kind", "video", "--out", data.path, "--train", "0", "--val", "1",
                                       "--frames", "4", "--image-size", "32x48", "--objects", "2"])
    XCTAssertEqual(synth.status, 0, synth.error)
    let run = try SegKitCommand.run(["vos", "segment", "--parent", weights.path, "--model", "maskrnn_resnet18", "--davis", data.path,
                                     "--year", "2017", "--out", results.path, "--device", "cpu", "--plain"])
    XCTAssertEqual(run.status, 0, run.error)
    XCTAssertTrue(run.output.contains("2 object(s)"), run.output)
    let sequence = try XCTUnwrap(try VideoDataset.davis2017(root: data, split: "val").sequences.first)
    for frame in sequence.frames {
      let labels = try ImageIO.readLabel(results.appendingPathComponent("\(sequence.name)/\(try XCTUnwrap(frame.label?.url.lastPathComponent))"))
      XCTAssertTrue(Set(labels.pixels).isSubset(of: [0, 1, 2]))
    }
    let scored = try SegKitCommand.run(["vos", "eval", "--results", results.path, "--davis", data.path, "--year", "2017"])
    XCTAssertEqual(scored.status, 0, scored.error)
    // --flow exact reads the generator's flows; a missing one is named; OSVOS reads no flow.
    let exactArguments = ["vos", "segment", "--parent", weights.path, "--model", "maskrnn_resnet18", "--davis", data.path,
                          "--year", "2017", "--device", "cpu", "--plain", "--flow", "exact"]
    let exact = try SegKitCommand.run(exactArguments + ["--out", root.appendingPathComponent("exact").path])
    XCTAssertEqual(exact.status, 0, exact.error)
    let flowFile = Synthetic.flowFolders(of: data).backward.appendingPathComponent("\(sequence.name)/00002.flo")
    try FileManager.default.removeItem(at: flowFile)
    let missing = try SegKitCommand.run(exactArguments + ["--out", root.appendingPathComponent("exact-missing").path])
    XCTAssertNotEqual(missing.status, 0)
    XCTAssertTrue(missing.error.contains("\(flowFile.path) is missing"), missing.error)
    let osvos = try SegKitCommand.run(["vos", "segment", "--parent", weights.path, "--model", "osvos_resnet18", "--davis", data.path,
                                       "--year", "2017", "--out", root.appendingPathComponent("z").path, "--flow", "exact"])
    XCTAssertNotEqual(osvos.status, 0)
    XCTAssertTrue(osvos.error.contains("--flow exact is for MaskRNN"), osvos.error)
    // With --steps, each object's copy is first fine-tuned on the first frame.
    let tuned = try SegKitCommand.run(["vos", "segment", "--parent", weights.path, "--model", "maskrnn_resnet18", "--davis", data.path,
                                       "--year", "2017", "--out", root.appendingPathComponent("tuned").path, "--device", "cpu",
                                       "--steps", "2", "--plain", "--precision", "bf16"])
    if Torch.cpuHasBFloat16Convolutions {
      XCTAssertEqual(tuned.status, 0, tuned.error)
      XCTAssertTrue(tuned.output.contains("2 object(s), fine-tuned in"), tuned.output)
    } else {
      XCTAssertEqual(tuned.status, 1, tuned.error)
      XCTAssertTrue(tuned.error.contains("bf16 needs a CPU with bfloat16 convolutions"), tuned.error)
    }
    let wrong = try SegKitCommand.run(["vos", "segment", "--parent", weights.path, "--model", "maskrnn_vgg16", "--davis", data.path,
                                       "--year", "2017", "--out", root.appendingPathComponent("x").path])
    XCTAssertNotEqual(wrong.status, 0)
    XCTAssertTrue(wrong.error.contains("do not fit maskrnn_vgg16"), wrong.error)
    let int8 = try SegKitCommand.run(["vos", "segment", "--parent", weights.path, "--model", "maskrnn_resnet18", "--davis", data.path,
                                      "--year", "2017", "--out", root.appendingPathComponent("y").path, "--precision", "int8"])
    XCTAssertNotEqual(int8.status, 0)
    XCTAssertTrue(int8.error.contains("MaskRNN runs in fp32 or bf16"), int8.error)
  }
}
