import Foundation
import SegKitTraining
import SegKitTestSupport
import XCTest

/// `segkit predict` on folders and videos: which files it writes, and that they hold
/// the model's predictions; bad input stops it with a clear error and loses nothing.
final class PredictOutputsTests: XCTestCase {
  var dir: URL!
  var weights: URL!

  override func setUpWithError() throws {
    dir = try Oracle.temporaryDirectory("segkit-predict")
    try SlowTest.skipInFastTier()
    let model = try ModelZoo.make("lraspp_mobilenet_v3_large", classes: 6)
    weights = dir.appendingPathComponent("model.safetensors")
    try StateDict(try model.stateDict()).save(to: weights)
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(at: dir)
  }

  func image(_ index: Int, width: Int = 64, height: Int = 48) -> Image {
    Synthetic.semanticSample(seed: 3, split: "test", index: index, width: width, height: height).image
  }

  func predict(_ arguments: [String]) throws -> SegKitCommand.Result {
    try SegKitCommand.run(["predict", "--model", "lraspp_mobilenet_v3_large", "--weights", weights.path] + arguments)
  }

  /// The labels SegKit's own image segmenter gives, in this process.
  func expectedLabels(_ image: Image) throws -> Image {
    let model = try ModelLoader.build(
      ModelManifest(model: "lraspp_mobilenet_v3_large", classes: 6), weights: try ModelLoader.readWeights(weights))
    return try ImageSegmenter(model: model).labels(image)
  }

  func testFolderGetsLabelsColourMasksAndOverlays() throws {
    let images = dir.appendingPathComponent("images")
    try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
    try ImageIO.writePNG(image(0), to: images.appendingPathComponent("a.png"))
    try ImageIO.writeJPEG(image(1, width: 80, height: 64), to: images.appendingPathComponent("b.jpg"))
    try Data("not an image".utf8).write(to: images.appendingPathComponent("notes.txt"))
    let out = dir.appendingPathComponent("out")
    let result = try predict(["--input", images.path, "--out", out.path, "--color", "--overlay"])
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertEqual(
      try FileManager.default.contentsOfDirectory(atPath: out.path).sorted(),
      ["a.png", "a_color.png", "a_overlay.jpg", "b.png", "b_color.png", "b_overlay.jpg"])
    for (stem, width, height) in [("a", 64, 48), ("b", 80, 64)] {
      let labels = try ImageIO.readLabel(out.appendingPathComponent("\(stem).png"))
      XCTAssertEqual([labels.width, labels.height], [width, height], stem)
      XCTAssertTrue(labels.pixels.allSatisfy { $0 < 6 }, stem)
      let color = try ImageIO.readNative(out.appendingPathComponent("\(stem)_color.png"))
      XCTAssertEqual(color, try Colormap.pascal.colorize(labels), "\(stem): the colour mask is the colormap of the labels")
      let overlay = try ImageIO.read(out.appendingPathComponent("\(stem)_overlay.jpg"))
      XCTAssertEqual([overlay.width, overlay.height], [width, height], stem)
    }
    let a = try ImageIO.readLabel(out.appendingPathComponent("a.png"))
    XCTAssertEqual(a.pixels, try expectedLabels(try ImageIO.read(images.appendingPathComponent("a.png"))).pixels)

    // --raw: plain gray PNGs holding the same ids.
    let raw = dir.appendingPathComponent("raw")
    XCTAssertEqual(try predict(["--input", images.path, "--out", raw.path, "--raw"]).status, 0)
    let gray = try ImageIO.readNative(raw.appendingPathComponent("a.png"))
    XCTAssertEqual(gray.channels, 1)
    XCTAssertEqual(gray.pixels, a.pixels)
  }

  func testVideoGetsAnOverlayVideoAndFrames() throws {
    let clip = dir.appendingPathComponent("clip.mkv")
    let writer = try VideoWriter(url: clip, width: 64, height: 48, fps: 10, codec: .ffv1)
    for i in 0..<4 { try writer.write(image(i)) }
    try writer.finish()
    let out = dir.appendingPathComponent("out")
    let result = try predict(["--input", clip.path, "--out", out.path, "--frames", "--color"])
    XCTAssertEqual(result.status, 0, result.error)
    let video = try VideoReader(out.appendingPathComponent("clip_overlay.mp4"))
    XCTAssertEqual([video.width, video.height, video.frameCount], [64, 48, 4])
    XCTAssertEqual(video.fps, 10, accuracy: 0.01)
    let frames = try FileManager.default.contentsOfDirectory(atPath: out.appendingPathComponent("clip").path).sorted()
    XCTAssertEqual(frames, (0..<4).flatMap { [String(format: "%06d.png", $0), String(format: "%06d_color.png", $0)] })
    // FFV1 is lossless, so frame 2 is exactly the image written.
    let labels = try ImageIO.readLabel(out.appendingPathComponent("clip/000002.png"))
    XCTAssertEqual(labels.pixels, try expectedLabels(image(2)).pixels)

    // The overlay video is an earlier result: kept unless --force.
    let videoURL = out.appendingPathComponent("clip_overlay.mp4")
    let before = try Data(contentsOf: videoURL)
    let again = try predict(["--input", clip.path, "--out", out.path])
    XCTAssertNotEqual(again.status, 0)
    XCTAssertTrue(again.error.contains("\(videoURL.path) exists: --force replaces it"), again.error)
    XCTAssertEqual(try Data(contentsOf: videoURL), before)
    XCTAssertEqual(try predict(["--input", clip.path, "--out", out.path, "--force"]).status, 0)
  }

  /// Ctrl-C part-way through a video: predict stops after the frame in progress,
  /// finishes the overlay video with the frames done (it plays) and exits 130; no
  /// partial file is left.
  func testInterruptLeavesAPlayableVideo() throws {
    let clip = dir.appendingPathComponent("long.mkv")
    let writer = try VideoWriter(url: clip, width: 64, height: 48, fps: 10, codec: .ffv1)
    for i in 0..<300 { try writer.write(image(i % 7)) }
    try writer.finish()
    let out = dir.appendingPathComponent("stopped")
    let output = Pipe()
    let process = try SegKitCommand.start(
      ["predict", "--model", "lraspp_mobilenet_v3_large", "--weights", weights.path, "--input", clip.path, "--out", out.path,
       "--frames"], output: output)
    let frames = out.appendingPathComponent("long")
    let deadline = Date().addingTimeInterval(60)
    while Date() < deadline && ((try? FileManager.default.contentsOfDirectory(atPath: frames.path))?.count ?? 0) < 3 {
      Thread.sleep(forTimeInterval: 0.05)
    }
    kill(process.processIdentifier, SIGINT)
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 130, text)
    XCTAssertTrue(text.contains("stopped early; it plays"), text)
    let video = try VideoReader(out.appendingPathComponent("long_overlay.mp4"))
    XCTAssertGreaterThanOrEqual(video.frameCount, 3)
    XCTAssertLessThan(video.frameCount, 300)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix(".") }, [])
  }

  /// `--run` takes the model, classes and colormap from model.json (CamVid's here, as
  /// a run on CamVid writes it; the dataset itself is not on this machine) and the
  /// weights from the latest checkpoint.
  func testRunFolderGivesModelWeightsAndColormap() throws {
    let run = dir.appendingPathComponent("run")
    var config = TrainingConfig()
    config.model.name = "lraspp_mobilenet_v3_large"
    config.data.numClasses = 6
    config.data.dataset = "camvid"
    try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
    try config.yaml().write(to: run.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
    try ModelManifest(
      model: "lraspp_mobilenet_v3_large", classes: 6, classNames: Array(Colormap.camvid.classNames.prefix(6)),
      colors: ModelManifest.colors(of: .camvid, count: 6)
    ).write(to: RunLayout(run).manifestURL)
    try CheckpointStore(directory: run.appendingPathComponent("checkpoints"))
      .save(Checkpoint(model: try StateDict.load(contentsOf: weights), metadata: CheckpointMetadata(step: 5)))
    let input = dir.appendingPathComponent("a.png")
    try ImageIO.writePNG(image(0), to: input)
    let out = dir.appendingPathComponent("out")
    let result = try SegKitCommand.run(["predict", "--run", run.path, "--input", input.path, "--out", out.path, "--color"])
    XCTAssertEqual(result.status, 0, result.error)
    let labels = try ImageIO.readLabel(out.appendingPathComponent("a.png"))
    XCTAssertEqual(labels.pixels, try expectedLabels(image(0)).pixels)
    XCTAssertEqual(try ImageIO.readNative(out.appendingPathComponent("a_color.png")), try Colormap.camvid.colorize(labels))
  }

  func testBadInputIsAClearErrorAndLosesNothing() throws {
    let images = dir.appendingPathComponent("images")
    try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
    try ImageIO.writePNG(image(0), to: images.appendingPathComponent("good.png"))
    try Data("not a JPEG".utf8).write(to: images.appendingPathComponent("broken.jpg"))
    let out = dir.appendingPathComponent("out")
    try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
    try Data("earlier".utf8).write(to: out.appendingPathComponent("keep.png"))

    let folder = try predict(["--input", images.path, "--out", out.path])
    XCTAssertNotEqual(folder.status, 0)
    XCTAssertTrue(folder.error.contains("broken.jpg") && folder.error.contains("1 of 2 images failed"), folder.error)
    XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("good.png").path), "the good image is done")
    XCTAssertEqual(try String(contentsOf: out.appendingPathComponent("keep.png"), encoding: .utf8), "earlier")

    let fresh = dir.appendingPathComponent("fresh")
    let good = images.appendingPathComponent("good.png").path
    let cases: [(String, [String], [String])] = [
      ("unreadable image", ["--model", "lraspp_mobilenet_v3_large", "--weights", weights.path,
                            "--input", images.appendingPathComponent("broken.jpg").path], ["broken.jpg", "not a PNG, JPEG or PPM"]),
      ("unknown model", ["--model", "lraspp_mobilenet_v9", "--input", good], ["unknown model 'lraspp_mobilenet_v9'"]),
      ("wrong classes", ["--model", "lraspp_mobilenet_v3_large", "--weights", weights.path, "--classes", "5", "--input", good],
       ["model.safetensors", "does not fit lraspp_mobilenet_v3_large with 5 classes"]),
      ("missing input", ["--model", "lraspp_mobilenet_v3_large", "--input", dir.appendingPathComponent("nope.png").path],
       ["nope.png", "no such file"]),
      ("logits of a folder", ["--model", "lraspp_mobilenet_v3_large", "--input", images.path, "--save-logits",
                              dir.appendingPathComponent("l.safetensors").path], ["--save-logits"]),
      ("logits of several passes", ["--model", "lraspp_mobilenet_v3_large", "--input", good, "--flip", "--save-logits",
                                    dir.appendingPathComponent("l.safetensors").path], ["--save-logits"]),
    ]
    for (name, arguments, fragments) in cases {
      let result = try SegKitCommand.run(["predict", "--out", fresh.path] + arguments)
      XCTAssertNotEqual(result.status, 0, name)
      for fragment in fragments {
        XCTAssertTrue(result.error.contains(fragment), "\(name): expected '\(fragment)' in: \(result.error)")
      }
      XCTAssertFalse(FileManager.default.fileExists(atPath: fresh.path), "\(name): nothing is written")
    }
  }
}
