import Foundation
import SegKitInference
import SegKitTestSupport
import XCTest

/// Model loading's one class-count rule, the segmenters' label rules, normalisation
/// and device names.
final class InferenceTests: XCTestCase {
  var root: URL!

  override func setUpWithError() throws { root = try Oracle.temporaryDirectory("segkit-inference") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  func message(_ body: () throws -> Void) -> String {
    do { try body() } catch { return "\(error)" }
    return "no error"
  }

  /// The caller's count, else the run's manifest, else the checkpoint's, else the fallback, else 21.
  func testOneClassCountRule() throws {
    let nine = root.appendingPathComponent("nine.safetensors")
    try StateDict(try ModelZoo.make("fcn32s_resnet18", classes: 9).stateDict()).save(to: nine)
    XCTAssertEqual(try ModelLoader.load(name: "fcn32s_resnet18", weights: nine, fallbackClasses: 4).manifest.classes, 9)
    XCTAssertTrue(message { _ = try ModelLoader.load(name: "fcn32s_resnet18", weights: nine, classes: 5) }
      .contains("does not fit fcn32s_resnet18 with 5 classes"))
    XCTAssertEqual(try ModelLoader.load(name: "fcn32s_resnet18", weights: nil, fallbackClasses: 4).manifest.classes, 4)
    XCTAssertEqual(try ModelLoader.load(name: "fcn32s_resnet18", weights: nil).manifest.classes, 21)
    // An encoder checkpoint says nothing about classes.
    let encoder = root.appendingPathComponent("encoder.safetensors")
    try StateDict(try ModelZoo.make("fcn32s_resnet18", classes: 3).encoder.stateDict()).save(to: encoder)
    XCTAssertEqual(try ModelLoader.load(name: "fcn32s_resnet18", weights: encoder, fallbackClasses: 4).manifest.classes, 4)

    // A run: its manifest, its latest checkpoint (optimizer entries left out).
    let run = RunLayout(root.appendingPathComponent("run"))
    try FileManager.default.createDirectory(at: run.checkpointsURL, withIntermediateDirectories: true)
    try ModelManifest(model: "fcn32s_resnet18", classes: 9, auxiliaryHead: false).write(to: run.manifestURL)
    try run.checkpoints().save(Checkpoint(
      model: try StateDict.load(contentsOf: nine), optimizer: [("param.0.momentum_buffer", try Tensor.zeros([2]))],
      metadata: CheckpointMetadata(step: 3)))
    let loaded = try ModelLoader.load(run: run)
    XCTAssertEqual(loaded.manifest.classes, 9)
    XCTAssertEqual(loaded.weights?.lastPathComponent, "step-000003.safetensors")
    XCTAssertTrue(message { _ = try ModelLoader.load(run: run, classes: 5) }.contains("differs from the run's 9 classes"))
  }

  /// A one-channel (foreground) model's label is a positive logit, or a probability
  /// above ½ when several passes are averaged; a multi-class model's is the argmax.
  func testLabelRules() throws {
    let model = try ModelZoo.make("fcn32s_resnet18", classes: 1)
    let single = try ImageSegmenter(model: model)
    let logits = try Tensor([-2, 0.5, 0, 3], shape: [1, 1, 2, 2])
    XCTAssertEqual(try single.labels(fromScores: logits).pixels, [0, 1, 0, 1])
    let averaged = ImageSegmenter(borrowing: model, settings: try InferenceSettings(flip: true), device: .cpu)
    XCTAssertEqual(try averaged.labels(fromScores: try Tensor([0.2, 0.6, 0.5, 0.9], shape: [1, 1, 2, 2])).pixels, [0, 1, 0, 1])
    let classes = try Tensor([1, 0, 0, 2, 3, 1, 2, 0], shape: [1, 2, 2, 2])
    XCTAssertEqual(try single.labels(fromScores: classes).pixels, [1, 1, 1, 0])
    let image = Image(width: 40, height: 24, channels: 3, filling: 90)
    XCTAssertEqual(try single.scores(image).shape, [1, 1, 24, 40])
    XCTAssertEqual(try averaged.scores(image).shape, [1, 1, 24, 40])
  }

  /// The frame-by-frame sequence segmenter gives each frame's image labels.
  func testFramewiseSegmenterSegmentsEachFrame() throws {
    Torch.manualSeed(1)
    let segmenter = try ImageSegmenter(model: try ModelZoo.make("fcn32s_resnet18", classes: 3))
    let sequence = FramewiseSegmenter(segmenter, shorterSide: 16)
    let frames = (0..<3).map { index in
      var frame = Image(width: 32, height: 24, channels: 3, filling: 0)
      for i in frame.pixels.indices { frame.pixels[i] = UInt8((i * (index + 3)) % 251) }
      return frame
    }
    let first = try sequence.start(firstFrame: frames[0], mask: nil)
    XCTAssertEqual(first, try segmenter.labels(frames[0], shorterSide: 16))
    XCTAssertEqual([first.width, first.height], [21, 16])
    for frame in frames.dropFirst() {
      XCTAssertEqual(try sequence.next(frame), try segmenter.labels(frame, shorterSide: 16))
    }
  }

  /// Caffe-style normalisation (OSVOS): BGR, 0–255 values minus the means.
  func testNormalization() throws {
    let image = try Image(width: 1, height: 1, channels: 3, pixels: [10, 20, 30])
    let caffe = InputNormalization(mean: [104, 117, 123], std: [1, 1, 1], pixelDivisor: 1, channelOrder: .bgr)
    XCTAssertEqual(try caffe.batch(image).toArray(Float.self), [30 - 104, 20 - 117, 10 - 123])
    let imagenet = try InputNormalization.imagenet.batch(image).toArray(Float.self)
    XCTAssertEqual(imagenet[0], (10 / 255 - 0.485) / 0.229, accuracy: 1e-6)
    XCTAssertEqual(try caffe.image(fromNormalized: try caffe.batch(image).squeeze(dim: 0)).pixels, [10, 20, 30])
  }

  func testDeviceNames() throws {
    XCTAssertEqual(try Device.resolve("auto"), Device.cudaDeviceCount > 0 ? .cuda(0) : .cpu)
    XCTAssertEqual(try Device.resolve("cpu"), .cpu)
    if Device.cudaDeviceCount == 0 {
      XCTAssertTrue(message { _ = try Device.resolve("cuda:3") }.contains("not available here"))
    }
    XCTAssertTrue(message { _ = try Device.resolve("tpu") }.contains("device 'tpu'"))
  }

  /// Scales and windows past the limits are refused (a scale of 1e300 used to trap converting the size).
  func testInferenceSettingsLimits() throws {
    XCTAssertThrowsError(try InferenceSettings(scales: [1, 1e300])) { XCTAssertTrue("\($0)".contains("must be in (0, 16.0]"), "\($0)") }
    XCTAssertThrowsError(try InferenceSettings(scales: [.nan]))
    XCTAssertThrowsError(try InferenceSettings(crop: Size2(1 << 40, 5))) { XCTAssertTrue("\($0)".contains("1 to 16384"), "\($0)") }
    XCTAssertNoThrow(try InferenceSettings(scales: [0.5, 16], crop: Size2(16_384, 1)))
  }
}
