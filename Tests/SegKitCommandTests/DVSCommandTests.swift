import Foundation
import SegKitData
import SegKitInference
import SegKitTestSupport
import SegKitTraining
import XCTest

/// `segkit dvs features`, `train-decision` and `eval` end to end on tiny street
/// snippets with untrained networks (what is checked is the plumbing: files, counts,
/// table, plot and errors; trained numbers are the main job's), `dvs video` stopped by
/// Ctrl-C, and `data synth --kind street|flow`.
final class DVSCommandTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  func testFeaturesDecisionTrainingAndSweep() throws {
    let root = try Oracle.temporaryDirectory("segkit-dvs-command")
    defer { try? FileManager.default.removeItem(at: root) }
    let data = root.appendingPathComponent("street")
    let synth = try SegKitCommand.run(["data", "synth", "--kind", "street", "--out", data.path, "--train", "2", "--val", "1",
                                       "--frames", "8", "--image-size", "64x64"])
    XCTAssertEqual(synth.status, 0, synth.error)
    XCTAssertTrue(synth.output.contains("frame 8 annotated"), synth.output)

    Torch.manualSeed(7)
    let segmentation = root.appendingPathComponent("fcn.safetensors"), flow = root.appendingPathComponent("flownets.safetensors")
    try StateDict(try ModelZoo.make("fcn32s_resnet18", classes: 19).stateDict()).save(to: segmentation)
    try StateDict(try FlowNetS(widths: .thin).stateDict()).save(to: flow)
    let networks = ["--model", "fcn32s_resnet18", "--weights", segmentation.path, "--flow", flow.path, "--device", "cpu"]

    for split in ["train", "val"] {
      let features = try SegKitCommand.run(["dvs", "features"] + networks + [
        "--cityscapes", data.path, "--split", split, "--max-distance", "2", "--stride", "3", "--regions", "1x2",
        "--out", root.appendingPathComponent("\(split).safetensors").path])
      XCTAssertEqual(features.status, 0, features.error)
    }
    // Current frames 7, 4 (and not 1: too close to the start), keys 0…2 back, two regions.
    let samples = try DecisionSamples.read(root.appendingPathComponent("train.safetensors"))
    XCTAssertEqual(samples.count, 2 * 2 * 3 * 2)
    XCTAssertEqual(try samples.distances.toArray(Float.self).prefix(6), [0, 0, 1, 1, 2, 2])
    // 64×32 regions: conv6_1 is one cell, so the decision network reads conv4_1 (4×4).
    XCTAssertEqual(samples.features.shape.dropFirst(), [192, 4, 4])
    XCTAssertEqual(samples.featureLayer, .conv4_1)
    XCTAssertEqual(samples.segmentation?.model, "fcn32s_resnet18")
    XCTAssertEqual(samples.segmentation?.source, segmentation.path)
    XCTAssertTrue(try samples.scores.toArray(Float.self).allSatisfy { (0...100).contains($0) })
    XCTAssertEqual(try samples.scores.toArray(Float.self).prefix(2), [100, 100], "a frame warped onto itself by near-zero flow agrees")

    let decisionFolder = root.appendingPathComponent("decision")
    let trained = try SegKitCommand.run(["dvs", "train-decision", "--train", root.appendingPathComponent("train.safetensors").path,
                                         "--val", root.appendingPathComponent("val.safetensors").path, "--out", decisionFolder.path,
                                         "--epochs", "3"])
    XCTAssertEqual(trained.status, 0, trained.error)
    XCTAssertTrue(trained.output.contains("epoch 3/3: train RMS"), trained.output)
    XCTAssertEqual(try String(contentsOf: decisionFolder.appendingPathComponent("history.csv"), encoding: .utf8)
      .split(separator: "\n").count, 4)
    let decision = decisionFolder.appendingPathComponent("decision.safetensors")
    let (decisionNetwork, info) = try DecisionNetworkFile.readWithInfo(decision)
    XCTAssertEqual(decisionNetwork.grid, Size2(4, 8))
    XCTAssertEqual(info.segmentation, samples.segmentation)
    XCTAssertEqual(info.featureLayer, .conv4_1)
    XCTAssertEqual(info.scorePercentiles.map(\.percentile), DynamicKeyFrameEvaluation.targetPercentiles)

    let sweepFolder = root.appendingPathComponent("sweep")
    let sweep = try SegKitCommand.run(["dvs", "eval"] + networks + ["--cityscapes", data.path, "--decision", decision.path,
                                                                  "--sweep", "--out", sweepFolder.path])
    XCTAssertEqual(sweep.status, 0, sweep.error)
    let rows = try String(contentsOf: sweepFolder.appendingPathComponent("sweep.csv"), encoding: .utf8).split(separator: "\n")
    // Every frame, intervals 2…10, and a target per distinct percentile of the training scores.
    let targets = rows.filter { $0.hasPrefix("target ") }.count
    XCTAssertTrue((1...11).contains(targets), rows.joined(separator: "\n"))
    XCTAssertEqual(rows.count, 1 + 1 + 9 + targets)
    XCTAssertTrue(rows[1].hasPrefix("every frame,"), String(rows[1]))
    // Every frame of the street snippet is labelled and scored: 8 frames, each segmented.
    XCTAssertTrue(rows[1].hasSuffix(",1.0000,8,0,8"), String(rows[1]))
    XCTAssertTrue(rows[2].hasPrefix("key every 2 frames,") && rows[2].hasSuffix(",0.5000,4,4,8"), String(rows[2]))
    for row in rows.dropFirst() {
      let fields = row.split(separator: ",").dropFirst().prefix(3).compactMap { Double($0) }
      XCTAssertTrue(fields.count == 3 && fields[1] <= fields[0] + 1e-9 && fields[0] <= fields[2] + 1e-9, "mIoU inside its interval: \(row)")
    }
    for name in ["sweep.png", "sweep-cost.png"] {
      let plot = try ImageIO.read(sweepFolder.appendingPathComponent(name))
      XCTAssertEqual([plot.width, plot.height], [720, 480])
    }

    // One annotated frame per snippet (as Cityscapes): runs start 2, 3 and 4 frames before
    // it, so a key every 3 frames is scored at three phases: runs of 3, 4 and 5 frames key 1 + 2 + 2 times.
    let oneLabel = root.appendingPathComponent("one-label")
    try FileManager.default.copyItem(at: data, to: oneLabel)
    for file in try FileManager.default.contentsOfDirectory(atPath: oneLabel.appendingPathComponent("gtFine/val/synth").path)
    where !file.contains("_000007_") {
      try FileManager.default.removeItem(at: oneLabel.appendingPathComponent("gtFine/val/synth/\(file)"))
    }
    let phases = try SegKitCommand.run(["dvs", "eval"] + networks + ["--cityscapes", oneLabel.path, "--policy", "interval:3",
                                                                   "--frames-before", "2-4"])
    XCTAssertEqual(phases.status, 0, phases.error)
    let third = try XCTUnwrap(phases.output.split(separator: "\n").first { $0.hasPrefix("key every 3 frames") })
    XCTAssertEqual(third.split(separator: " ").suffix(2), ["5", "7"], String(third))

    // A decision network measured against other segmentation weights is refused, naming both.
    Torch.manualSeed(8)
    let other = root.appendingPathComponent("other.safetensors")
    try StateDict(try ModelZoo.make("fcn32s_resnet18", classes: 19).stateDict()).save(to: other)
    let mismatch = try SegKitCommand.run(["dvs", "eval", "--model", "fcn32s_resnet18", "--weights", other.path, "--flow", flow.path,
                                          "--device", "cpu", "--cityscapes", data.path, "--decision", decision.path, "--policy", "balanced"])
    XCTAssertNotEqual(mismatch.status, 0)
    XCTAssertTrue(mismatch.error.contains(segmentation.path) && mismatch.error.contains(other.path) && mismatch.error.contains("dvs features"),
                  mismatch.error)

    let single = try SegKitCommand.run(["dvs", "eval"] + networks + ["--cityscapes", data.path, "--policy", "interval:3"])
    XCTAssertEqual(single.status, 0, single.error)
    XCTAssertTrue(single.output.contains("key every 3 frames"), single.output)

    // Bad input names what is wrong.
    let noDecision = try SegKitCommand.run(["dvs", "eval"] + networks + ["--cityscapes", data.path, "--policy", "balanced"])
    XCTAssertNotEqual(noDecision.status, 0)
    XCTAssertTrue(noDecision.error.contains("--decision"), noDecision.error)
    let badPolicy = try SegKitCommand.run(["dvs", "eval"] + networks + ["--cityscapes", data.path, "--policy", "target:500"])
    XCTAssertNotEqual(badPolicy.status, 0)
    XCTAssertTrue(badPolicy.error.contains("--policy 'target:500'"), badPolicy.error)
    let notSamples = try SegKitCommand.run(["dvs", "train-decision", "--train", segmentation.path, "--val", segmentation.path,
                                            "--out", root.appendingPathComponent("x").path])
    XCTAssertNotEqual(notSamples.status, 0)
    XCTAssertTrue(notSamples.error.contains("not a decision-sample file"), notSamples.error)
    // A video in, an annotated video of as many frames out.
    let video = root.appendingPathComponent("street.mp4")
    let snippet = try VideoSnippets.cityscapes(root: data, split: "val").snippets[0]
    let videoWriter = try VideoWriter(url: video, width: 64, height: 64, fps: 10)
    for frame in snippet.frames { try videoWriter.write(try ImageIO.read(frame)) }
    try videoWriter.finish()
    let annotated = try SegKitCommand.run(["dvs", "video", video.path] + networks + ["--policy", "interval:3", "--out", root.appendingPathComponent("video").path])
    XCTAssertEqual(annotated.status, 0, annotated.error)
    XCTAssertTrue(annotated.output.contains("(8 frames)") && annotated.output.contains("3 segmentation steps, 5 flow steps in 1x1 regions"), annotated.output)
    let reader = try VideoReader(root.appendingPathComponent("video/street_overlay.mp4"))
    XCTAssertEqual(try reader.readAll().count, 8)
    let again = try SegKitCommand.run(["dvs", "video", video.path] + networks + ["--policy", "interval:3", "--out", root.appendingPathComponent("video").path])
    XCTAssertNotEqual(again.status, 0)
    XCTAssertTrue(again.error.contains("--force replaces it"), again.error)
    // The old spelling still replaces it, for one release, and says what replaces it.
    let old = try SegKitCommand.run(["dvs", "video", video.path] + networks + ["--policy", "interval:3", "--overwrite", "--out", root.appendingPathComponent("video").path])
    XCTAssertEqual(old.status, 0, old.error)
    XCTAssertTrue(old.error.contains("--overwrite is deprecated") && old.error.contains("use --force"), old.error)
    let noNames = try SegKitCommand.run(["dvs", "video", video.path] + networks + ["--policy", "every-frame", "--boxes", "car", "--out", root.appendingPathComponent("video2").path])
    XCTAssertNotEqual(noNames.status, 0)
    XCTAssertTrue(noNames.error.contains("no class 'car'"), noNames.error)

    let badRegions = try SegKitCommand.run(["dvs", "eval"] + networks + ["--cityscapes", data.path, "--policy", "every-frame", "--regions", "2by2"])
    XCTAssertNotEqual(badRegions.status, 0)
    XCTAssertTrue(badRegions.error.contains("--regions '2by2'"), badRegions.error)
    let twoDatasets = try SegKitCommand.run(["dvs", "eval"] + networks + ["--cityscapes", data.path, "--camvid", data.path, "--policy", "every-frame"])
    XCTAssertNotEqual(twoDatasets.status, 0)
    XCTAssertTrue(twoDatasets.error.contains("one of --cityscapes and --camvid"), twoDatasets.error)
    let notCamVid = try SegKitCommand.run(["dvs", "eval"] + networks + ["--camvid", data.path, "--policy", "every-frame"])
    XCTAssertNotEqual(notCamVid.status, 0)
    XCTAssertTrue(notCamVid.error.contains("street/val: no such folder (split 'val'); CamVid at 30 fps"), notCamVid.error)
  }

  /// Ctrl-C during `dvs video`: it stops after the frame in progress, finishes the
  /// video with the frames done (it plays), says so and exits 130; no partial file is left.
  func testInterruptedVideoPlays() throws {
    let root = try Oracle.temporaryDirectory("segkit-dvs-interrupt")
    defer { try? FileManager.default.removeItem(at: root) }
    Torch.manualSeed(7)
    let segmentation = root.appendingPathComponent("fcn.safetensors"), flow = root.appendingPathComponent("flownets.safetensors")
    try StateDict(try ModelZoo.make("fcn32s_resnet18", classes: 19).stateDict()).save(to: segmentation)
    try StateDict(try FlowNetS(widths: .thin).stateDict()).save(to: flow)
    let street = try Synthetic.streetSnippet(seed: 0, split: "val", index: 0, frames: 8, width: 64, height: 64)
    let video = root.appendingPathComponent("street.mkv")
    let videoWriter = try VideoWriter(url: video, width: 64, height: 64, fps: 10, codec: .ffv1)
    for index in 0..<400 { try videoWriter.write(street.frames[index % 8]) }
    try videoWriter.finish()

    let out = root.appendingPathComponent("video")
    let output = Pipe()
    let process = try SegKitCommand.start(
      ["dvs", "video", video.path, "--model", "fcn32s_resnet18", "--weights", segmentation.path, "--flow", flow.path,
       "--device", "cpu", "--policy", "interval:3", "--out", out.path], output: output)
    // The output video is being written once its partial file has bytes.
    let partial = out.appendingPathComponent(".street_overlay.partial.mp4")
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline && ((try? FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? Int) ?? 0) == 0 {
      Thread.sleep(forTimeInterval: 0.05)
    }
    kill(process.processIdentifier, SIGINT)
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 130, text)
    XCTAssertTrue(text.contains("stopped early; it plays"), text)
    let written = try VideoReader(out.appendingPathComponent("street_overlay.mp4"))
    XCTAssertGreaterThanOrEqual(written.frameCount, 1)
    XCTAssertLessThan(written.frameCount, 400)
    XCTAssertEqual(try written.readAll().count, written.frameCount)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix(".") }, [])
  }
}
