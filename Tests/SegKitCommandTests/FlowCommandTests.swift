import Foundation
import SegKitData
import SegKitInference
import SegKitTestSupport
import XCTest

/// `segkit flow`, `flow show` and `flow warp` end to end, and their bad input.
final class FlowCommandTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  func testComputeShowWarpAndBadInput() throws {
    let root = try Oracle.temporaryDirectory("segkit-flow-command")
    defer { try? FileManager.default.removeItem(at: root) }
    let data = root.appendingPathComponent("davis")
    let synth = try SegKitCommand.run(["data", "synth", "--kind", "video", "--out", data.path, "--train", "0", "--val", "1",
                                       "--frames", "2", "--image-size", "48x64", "--objects", "1"])
    XCTAssertEqual(synth.status, 0, synth.error)
    let sequence = try XCTUnwrap(try VideoDataset.davis2016(root: data, split: "val").sequences.first)
    let (a, b) = (sequence.frames[0].image, sequence.frames[1].image)
    let mask = try XCTUnwrap(sequence.frames[0].label?.url)
    let flow = root.appendingPathComponent("out/b-to-a.flo")

    let computed = try SegKitCommand.run(["flow", b.path, a.path, "--out", flow.path, "--preset", "ultrafast"])
    XCTAssertEqual(computed.status, 0, computed.error)
    let field = try FlowFile.read(flow)
    XCTAssertEqual([field.width, field.height], [64, 48])
    XCTAssertEqual(field, try OpticalFlow.dis(from: try ImageIO.read(b), to: try ImageIO.read(a), preset: .ultrafast))

    // --upscale: DIS on enlarged frames, the flow at the frames' size; refused for networks and out of range.
    let upscaled = root.appendingPathComponent("out/upscaled.flo")
    let byTwo = try SegKitCommand.run(["flow", b.path, a.path, "--out", upscaled.path, "--preset", "ultrafast", "--upscale", "2"])
    XCTAssertEqual(byTwo.status, 0, byTwo.error)
    XCTAssertTrue(byTwo.output.contains("frames ×2"), byTwo.output)
    XCTAssertEqual(try FlowFile.read(upscaled),
                   try OpticalFlow.dis(from: try ImageIO.read(b), to: try ImageIO.read(a), preset: .ultrafast, upscale: 2))
    for (arguments, message) in [(["--upscale", "9"], "--upscale must be 1 to 8"),
                                 (["--upscale", "2", "--method", "flownets_thin", "--weights", "w"], "--upscale is for dis")] {
      let refused = try SegKitCommand.run(["flow", b.path, a.path, "--out", root.appendingPathComponent("no.flo").path] + arguments)
      XCTAssertNotEqual(refused.status, 0)
      XCTAssertTrue(refused.error.contains(message), refused.error)
    }

    let picture = root.appendingPathComponent("flow.png")
    let shown = try SegKitCommand.run(["flow", "show", flow.path, "--out", picture.path])
    XCTAssertEqual(shown.status, 0, shown.error)
    XCTAssertEqual(try ImageIO.size(of: picture).width, 64)

    let warped = root.appendingPathComponent("warped.png")
    let warp = try SegKitCommand.run(["flow", "warp", "--mask", mask.path, "--flow", flow.path, "--out", warped.path])
    XCTAssertEqual(warp.status, 0, warp.error)
    XCTAssertEqual(try ImageIO.readLabel(warped).pixels, try FlowWarp.warp(mask: try ImageIO.readLabel(mask), by: field).pixels)

    // The split's flows, cached beside the dataset and reused.
    let cached = try SegKitCommand.run(["flow", "cache", "--davis", data.path, "--year", "2016", "--preset", "ultrafast"])
    XCTAssertEqual(cached.status, 0, cached.error)
    XCTAssertTrue(cached.output.contains("1 sequences, 2 frames: 2 computed"), cached.output)
    XCTAssertEqual(try FlowFile.read(data.appendingPathComponent("FlowCache/\(sequence.name)/00001.backward.flo")), field)
    let again = try SegKitCommand.run(["flow", "cache", "--davis", data.path, "--year", "2016", "--preset", "ultrafast"])
    XCTAssertTrue(again.output.contains("0 computed, 2 already cached"), again.output)
    let other = try SegKitCommand.run(["flow", "cache", "--davis", data.path, "--year", "2016", "--preset", "medium"])
    XCTAssertNotEqual(other.status, 0)
    XCTAssertTrue(other.error.contains("made with dis (preset ultrafast)"), other.error)
    let enlarged = try SegKitCommand.run(["flow", "cache", "--davis", data.path, "--year", "2016", "--preset", "ultrafast", "--upscale", "2"])
    XCTAssertNotEqual(enlarged.status, 0)
    XCTAssertTrue(enlarged.error.contains("asks for dis (preset ultrafast) (frames ×2)"), enlarged.error)

    // A flow of another size than the mask, a truncated .flo, a missing frame: clear errors, nothing written.
    let small = root.appendingPathComponent("small.flo")
    try FlowFile.write(try FlowField(width: 8, height: 8, values: [Float](repeating: 0, count: 128)), to: small)
    let truncated = root.appendingPathComponent("truncated.flo")
    try Data(try Data(contentsOf: flow).dropLast(10)).write(to: truncated)
    let cases: [([String], String)] = [
      (["flow", "warp", "--mask", mask.path, "--flow", small.path, "--out", root.appendingPathComponent("x.png").path], "8×8"),
      (["flow", "warp", "--mask", mask.path, "--flow", truncated.path, "--out", root.appendingPathComponent("x.png").path],
       "truncated.flo"),
      (["flow", "show", truncated.path, "--out", root.appendingPathComponent("x.png").path], "truncated or not a .flo file"),
      (["flow", root.appendingPathComponent("none.png").path, a.path, "--out", root.appendingPathComponent("x.flo").path], "none.png"),
    ]
    for (arguments, expected) in cases {
      let result = try SegKitCommand.run(arguments)
      XCTAssertNotEqual(result.status, 0, arguments.joined(separator: " "))
      XCTAssertLessThan(result.status, 128)
      XCTAssertTrue(result.error.contains(expected), result.error)
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("x.png").path))
    XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("x.flo").path))
  }

  /// `--method flownet2s --weights W` (here random weights in flownet2-pytorch's keys, as
  /// a torch.save checkpoint holding `state_dict`): the network's flow at the frames' size.
  func testNetworkMethods() throws {
    let root = try Oracle.temporaryDirectory("segkit-flow-network")
    defer { try? FileManager.default.removeItem(at: root) }
    let (a, b) = (root.appendingPathComponent("a.png"), root.appendingPathComponent("b.png"))
    let first = try Image(width: 40, height: 30, channels: 3, pixels: (0..<3600).map { UInt8(($0 * 7) % 256) })
    try ImageIO.writePNG(first, to: a)
    try ImageIO.writePNG(try Image(width: 40, height: 30, channels: 3, pixels: (0..<3600).map { UInt8(($0 * 7 + 21) % 256) }), to: b)
    Torch.manualSeed(5)
    let network = try FlowNetS(widths: .thin)
    let weights = root.appendingPathComponent("thin.safetensors")
    try StateDict(try network.stateDict()).save(to: weights)
    let out = root.appendingPathComponent("f.flo")
    let result = try SegKitCommand.run(["flow", a.path, b.path, "--method", "flownets_thin", "--weights", weights.path, "--out", out.path])
    XCTAssertEqual(result.status, 0, result.error)
    let field = try FlowFile.read(out)
    XCTAssertEqual([field.width, field.height], [40, 30])
    let expected = try NetworkFlow(widths: .thin, weights: weights).flow(from: try ImageIO.read(a), to: try ImageIO.read(b))
    XCTAssertEqual(field, expected)

    // FlowNet2-S from a .pth.tar of flownet2-pytorch's form: {"epoch", "best_EPE", "state_dict"}.
    let full = try FlowNetS(widths: .full)
    let checkpoint = root.appendingPathComponent("FlowNet2-S_checkpoint.pth.tar")
    _ = try OracleTensors.run("""
      inputs = load_inputs()
      torch.save({"epoch": 1, "best_EPE": 2.5, "state_dict": {k: v for k, v in inputs.items()}}, "\(checkpoint.path)")
      """, inputs: try full.stateDict().map { ($0.0, $0.1) })
    let flownet2 = try SegKitCommand.run(["flow", a.path, b.path, "--method", "flownet2s", "--weights", checkpoint.path,
                                          "--out", root.appendingPathComponent("g.flo").path])
    XCTAssertEqual(flownet2.status, 0, flownet2.error)

    for (arguments, message) in [(["--method", "flownet2s"], "needs --weights"), (["--weights", weights.path], "not dis"),
                                 (["--method", "flownet2s", "--weights", weights.path], "not the weights of this FlowNetS")] {
      let bad = try SegKitCommand.run(["flow", a.path, b.path, "--out", root.appendingPathComponent("x.flo").path] + arguments)
      XCTAssertNotEqual(bad.status, 0)
      XCTAssertTrue(bad.error.contains(message), bad.error)
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("x.flo").path))

    // A DAVIS split's flow cache filled by the network, recorded with its weights, and refused to DIS.
    let davis = root.appendingPathComponent("davis")
    let synth = try SegKitCommand.run(["data", "synth", "--kind", "video", "--out", davis.path, "--train", "0", "--val", "1",
                                       "--frames", "2", "--image-size", "48x64", "--objects", "1"])
    XCTAssertEqual(synth.status, 0, synth.error)
    let cached = try SegKitCommand.run(["flow", "cache", "--davis", davis.path, "--year", "2016", "--method", "flownets_thin",
                                        "--weights", weights.path])
    XCTAssertEqual(cached.status, 0, cached.error)
    let cache = try FlowCache(folder: davis.appendingPathComponent("FlowCache"), method: try NetworkFlow(widths: .thin, weights: weights).method)
    XCTAssertEqual(cache.settings.method, "flownets_thin")
    XCTAssertEqual(cache.settings.weights, try FlowMethod.fingerprint(of: weights))
    let sequence = try XCTUnwrap(try VideoDataset.davis2016(root: davis, split: "val").sequences.first)
    let stored = try XCTUnwrap(try cache.flows(of: sequence, frame: 1).backward)
    XCTAssertEqual(stored, try NetworkFlow(widths: .thin, weights: weights)
      .flow(from: try ImageIO.read(sequence.frames[1].image), to: try ImageIO.read(sequence.frames[0].image)))
    let dis = try SegKitCommand.run(["flow", "cache", "--davis", davis.path, "--year", "2016"])
    XCTAssertNotEqual(dis.status, 0)
    XCTAssertTrue(dis.error.contains("a flow cache made with flownets_thin"), dis.error)
  }
}
