import Foundation
import SegKitTestSupport
import SegKitInference
import SegKitTraining
import XCTest

/// `segkit vos segment --method xmem`: XMem's weights as torch.save wrote them, DAVIS
/// sequences and a video into the same layouts as OSVOS and MaskRNN, the probabilities
/// kept per frame, and the arguments checked.
final class VOSSegmentXMemCommandTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  func testXMemSegmentsDAVISAndAVideoFromItsWeights() throws {
    let root = try Oracle.temporaryDirectory("segkit-vos-xmem")
    defer { try? FileManager.default.removeItem(at: root) }
    let weights = root.appendingPathComponent("XMem.pth")
    try OracleTensors.run(try OracleModels.xmem() + "\n" + #"""
      net = OracleXMem()
      randomize(net, 5)
      torch.save(net.state_dict(), "\#(weights.path)")
      """#)
    let data = root.appendingPathComponent("davis"), results = root.appendingPathComponent("results")
    let probabilities = root.appendingPathComponent("probabilities")
    let synth = try SegKitCommand.run(["data", "synth", "--kind", "video", "--out", data.path, "--train", "0", "--val", "1",
                                       "--frames", "6", "--image-size", "32x48", "--objects", "2"])
    XCTAssertEqual(synth.status, 0, synth.error)
    let common = ["vos", "segment", "--weights", weights.path, "--size", "-1", "--mem-every", "2", "--device", "cpu", "--plain"]
    let run = try SegKitCommand.run(common + ["--method", "xmem", "--davis", data.path, "--year", "2017", "--out", results.path,
                                              "--save-probabilities", probabilities.path])
    XCTAssertEqual(run.status, 0, run.error)
    XCTAssertTrue(run.output.contains("2 object(s)"), run.output)
    XCTAssertFalse(run.output.contains("fine-tuned"), run.output)
    let sequence = try XCTUnwrap(try VideoDataset.davis2017(root: data, split: "val").sequences.first)
    for (index, frame) in sequence.frames.enumerated() {
      let labels = try ImageIO.readLabel(results.appendingPathComponent("\(sequence.name)/\(try XCTUnwrap(frame.label?.url.lastPathComponent))"))
      XCTAssertTrue(Set(labels.pixels).isSubset(of: [0, 1, 2]))
      if index == 0 { XCTAssertEqual(labels.pixels, try ImageIO.readLabel(try XCTUnwrap(frame.label?.url)).pixels, "the first frame is its mask") }
      let stem = frame.image.deletingPathExtension().lastPathComponent
      let saved = try StateDict.load(contentsOf: probabilities.appendingPathComponent("\(sequence.name)/\(stem).safetensors"))
      let tensor = try XCTUnwrap(saved["probabilities"])
      XCTAssertEqual(tensor.shape, [2, 32, 48])
      XCTAssertEqual(tensor.dtype, .float32)
      XCTAssertLessThanOrEqual(try tensor.sum(dim: 0).max().item(), 1 + 1e-5, "objects' probabilities leave the background's share")
    }
    let scored = try SegKitCommand.run(["vos", "eval", "--results", results.path, "--davis", data.path, "--year", "2017"])
    XCTAssertEqual(scored.status, 0, scored.error)
    XCTAssertTrue(run.output.contains("XMem: size kept, mem_every 2, top_k 30, mid-term 5–10 frames, 128 prototypes, long-term ≤ 10000\n"),
                  run.output)

    // Weights in a training run's folder: its settings, under the flags given.
    let trained = root.appendingPathComponent("run")
    try FileManager.default.createDirectory(at: trained, withIntermediateDirectories: true)
    try FileManager.default.copyItem(at: weights, to: trained.appendingPathComponent("model.safetensors"))
    var settings = XMemSettings()
    (settings.size, settings.memEvery, settings.topK) = (nil, 3, 7)
    var manifest = ModelManifest(model: "xmem", task: .memory, classes: 1)
    manifest.inference = .init(memory: settings)
    try manifest.write(to: trained.appendingPathComponent("model.json"))
    let fromRun = try SegKitCommand.run(["vos", "segment", "--weights", trained.appendingPathComponent("model.safetensors").path,
                                         "--top-k", "5", "--device", "cpu", "--plain", "--davis", data.path, "--year", "2017",
                                         "--out", root.appendingPathComponent("from-run").path])
    XCTAssertEqual(fromRun.status, 0, fromRun.error)
    XCTAssertTrue(fromRun.output.contains("XMem: size kept, mem_every 3, top_k 5, mid-term 5–10 frames, 128 prototypes, long-term ≤ 10000 (over the training run's)"),
                  fromRun.output)

    // A video with its first mask: the same layout as the other methods.
    let video = root.appendingPathComponent("clip.mp4")
    let writer = try VideoWriter(url: video, width: 48, height: 32, fps: 10)
    for frame in sequence.frames { try writer.write(try ImageIO.read(frame.image)) }
    try writer.finish()
    let out = root.appendingPathComponent("out")
    let clip = try SegKitCommand.run(common + ["--video", video.path, "--first-mask", try XCTUnwrap(sequence.frames.first?.label?.url.path),
                                               "--out", out.path])
    XCTAssertEqual(clip.status, 0, clip.error)
    XCTAssertTrue(clip.output.contains("6 frames, 2 object(s)"), clip.output)
    XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("clip/000005.png").path))

    let other = root.appendingPathComponent("unet.safetensors")
    try StateDict(try ModelZoo.make("unet_resnet18", classes: 1).stateDict()).save(to: other)

    // YouTube-VOS: the second object joins on the frame its mask first appears.
    let youtube = try Synthetic.writeYouTubeVOS(from: sequence, to: root.appendingPathComponent("valid"))
    let ytOut = root.appendingPathComponent("yt")
    let yt = try SegKitCommand.run(common + ["--youtube-vos", youtube.path, "--out", ytOut.path])
    XCTAssertEqual(yt.status, 0, yt.error)
    XCTAssertTrue(yt.output.contains("[1/1] v1: 6 frames, 2 object(s)"), yt.output)
    for (index, stem) in ["00000", "00005", "00010", "00025"].enumerated() {
      let labels = try ImageIO.readLabel(ytOut.appendingPathComponent("Annotations/v1/\(stem).png"))
      XCTAssertEqual([labels.width, labels.height], [48, 32])
      XCTAssertTrue(Set(labels.pixels).isSubset(of: index < 2 ? [0, 1] : [0, 1, 2]), "\(stem): \(Set(labels.pixels))")
    }
    let onlyXMem = try SegKitCommand.run(["vos", "segment", "--parent", other.path, "--model", "unet_resnet18", "--youtube-vos", youtube.path,
                                          "--out", ytOut.path])
    XCTAssertNotEqual(onlyXMem.status, 0)
    XCTAssertTrue(onlyXMem.error.contains("--youtube-vos is for --method xmem"), onlyXMem.error)

    // Arguments that do not fit together, and weights that are not XMem's.
    let davis = ["--davis", data.path, "--year", "2017", "--out", root.appendingPathComponent("bad").path]
    for (arguments, message) in [
      (["vos", "segment", "--method", "xmem"] + davis, "--method xmem needs --weights"),
      (["vos", "segment", "--method", "xmem", "--parent", other.path] + davis, "--method xmem reads --weights, not --parent"),
      (["vos", "segment", "--parent", other.path, "--model", "unet_resnet18", "--save-probabilities", probabilities.path] + davis,
       "--save-probabilities is for --method xmem"),
      (common + ["--top-k", "0"] + davis, "--top-k must be at least 1"),
      (common + ["--min-mid-term-frames", "10"] + davis, "--max-mid-term-frames (10) must be above --min-mid-term-frames (10)"),
      (["vos", "segment", "--weights", other.path, "--device", "cpu"] + davis, "\(other.path): XMem weights: 'key_proj.key_proj.weight' is missing"),
    ] {
      let bad = try SegKitCommand.run(arguments)
      XCTAssertNotEqual(bad.status, 0, arguments.joined(separator: " "))
      XCTAssertTrue(bad.error.contains(message), "\(message) not in: \(bad.error)")
    }
  }
}
