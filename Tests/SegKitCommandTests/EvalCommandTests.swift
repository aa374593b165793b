import Foundation
import SegKitTraining
import SegKitTestSupport
import XCTest

/// `segkit eval` and `Evaluator` against independent computations: numpy scores the
/// saved predictions, PyTorch runs the same torchvision checkpoint with the same
/// multi-scale, flip and sliding-window averaging.
final class EvalCommandTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  /// torchvision's LR-ASPP with 6 classes and random weights (batch-norm statistics
  /// too), its predictions on the synthetic val split, and reference scores of one
  /// 72×100 image for three inference settings.
  static let fixtureScript = """
    import sys, math, os, numpy as np, torch, torchvision, torch.nn.functional as F
    \(Oracle.randomizeNorm)
    from PIL import Image
    from safetensors.torch import save_file
    out, root = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    model = torchvision.models.segmentation.lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=6).eval()
    randomize_norm(model, affine=False)
    torch.save(model.state_dict(), out + "/model.pth")
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1); std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    def batch(path):
        x = torch.from_numpy(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
        return (x - mean) / std
    def scaled(n, s): return max(1, int(math.floor(n * s + 0.5)))
    def starts(length, window, overlap):
        if length <= window: return [0]
        stride = max(1, int(math.floor(window * (1 - overlap) + 0.5)))
        return [min(i * stride, length - window) for i in range((length - window + stride - 1) // stride + 1)]
    def slide(x, crop, overlap=1 / 3):
        if crop is None: return model(x)["out"]
        H, W = x.shape[2:]
        total, count = None, torch.zeros(1, 1, H, W)
        for t in starts(H, crop[0], overlap):
            for l in starts(W, crop[1], overlap):
                h, w = min(crop[0], H), min(crop[1], W)
                y = model(x[:, :, t:t + h, l:l + w])["out"]
                if total is None: total = torch.zeros(1, y.shape[1], H, W)
                total[:, :, t:t + h, l:l + w] += y
                count[:, :, t:t + h, l:l + w] += 1
        return total / count
    def predict(x, scales=(1.0,), flip=False, crop=None):
        H, W = x.shape[2:]
        passes = []
        for s in scales:
            xs = x if s == 1 else F.interpolate(x, size=(scaled(H, s), scaled(W, s)), mode="bilinear", align_corners=False)
            for mirrored in ([False, True] if flip else [False]):
                y = slide(xs.flip(3) if mirrored else xs, crop)
                if mirrored: y = y.flip(3)
                if tuple(y.shape[2:]) != (H, W): y = F.interpolate(y, size=(H, W), mode="bilinear", align_corners=False)
                passes.append(y)
        if len(passes) == 1: return passes[0]
        return torch.stack([p.softmax(1) for p in passes]).mean(0)
    with torch.no_grad():
        for folder, kwargs in [("tv_plain", {}), ("tv_msflip", {"scales": (0.75, 1.25), "flip": True})]:
            os.makedirs(out + "/" + folder)
            for name in open(root + "/ImageSets/Segmentation/val.txt").read().split():
                labels = predict(batch(root + "/JPEGImages/" + name + ".jpg"), **kwargs).argmax(1)[0].to(torch.uint8).numpy()
                Image.fromarray(labels, mode="L").save(out + "/" + folder + "/" + name + ".png")
        rgb = (torch.rand(72, 100, 3) * 255).to(torch.uint8).numpy()
        Image.fromarray(rgb).save(out + "/big.png")
        x = batch(out + "/big.png")
        save_file({
            "multiscale_flip": predict(x, scales=(0.5, 0.75, 1.25, 1.75), flip=True).contiguous(),
            "sliding": predict(x, crop=(48, 64)).contiguous(),
            "all": predict(x, scales=(0.75, 1.25), flip=True, crop=(48, 64)).contiguous(),
        }, out + "/references.safetensors")
    """

  /// numpy's scores of each prediction folder against the val labels, and its
  /// agreement with a reference folder: argv = root, classes, then folder=reference pairs.
  static let scoringScript = """
    import sys, json, numpy as np
    from PIL import Image
    root, C = sys.argv[1], int(sys.argv[2])
    names = open(root + "/ImageSets/Segmentation/val.txt").read().split()
    result = {}
    for pair in sys.argv[3:]:
        folder, reference = pair.split("=")
        cm = np.zeros((C, C), np.int64)
        agree = pixels = 0
        for n in names:
            gt = np.array(Image.open(root + "/SegmentationClass/" + n + ".png")).astype(np.int64)
            pr = np.array(Image.open(folder + "/" + n + ".png")).astype(np.int64)
            ref = np.array(Image.open(reference + "/" + n + ".png")).astype(np.int64)
            valid = gt != 255
            cm += np.bincount(gt[valid] * C + pr[valid], minlength=C * C).reshape(C, C)
            agree += int((pr == ref).sum()); pixels += pr.size
        tp = np.diag(cm).astype(np.float64); g = cm.sum(1); p = cm.sum(0); n = cm.sum()
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = tp / (g + p - tp); acc = tp / g
        result[folder] = {
            "confusion_matrix": cm.tolist(), "mIoU": float(np.nanmean(iou)), "pixel_accuracy": float(tp.sum() / n),
            "mean_accuracy": float(np.nanmean(acc)), "fwIoU": float((g[g > 0] / n * iou[g > 0]).sum()),
            "per_class_iou": [None if np.isnan(v) else float(v) for v in iou], "agreement": agree / pixels}
    print(json.dumps(result))
    """

  struct Fixture {
    let dir: URL
    let root: URL
    var weights: URL { dir.appendingPathComponent("model.pth") }
  }

  nonisolated(unsafe) static var cached: Result<Fixture, Error>?

  static func fixture() throws -> Fixture {
    if cached == nil {
      cached = Result {
        let dir = try Oracle.temporaryDirectory("segkit-eval")
        let root = dir.appendingPathComponent("voc")
        var options = Synthetic.SemanticOptions()
        (options.trainCount, options.valCount, options.width, options.height, options.seed) = (1, 4, 64, 64, 7)
        try Synthetic.writeSemantic(to: root, options: options)
        try Oracle.run(fixtureScript, arguments: [dir.path, root.path])
        return Fixture(dir: dir, root: root)
      }
    }
    return try cached!.get()
  }

  override class func tearDown() {
    if case .success(let fixture)? = cached { try? FileManager.default.removeItem(at: fixture.dir) }
    cached = nil
  }

  func eval(_ fixture: Fixture, _ extra: [String]) throws -> SegKitCommand.Result {
    try SegKitCommand.run([
      "eval", "--model", "lraspp_mobilenet_v3_large", "--weights", fixture.weights.path, "--dataset", "voc",
      "--dataset-dir", fixture.root.path, "--split", "val", "--device", "cpu",
    ] + extra)
  }

  func json(_ url: URL) throws -> [String: Any] {
    try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any], url.path)
  }

  /// The eval JSON equals numpy's scores of the predictions eval saved, which agree
  /// with torchvision's own, both for one pass and for two scales with flips.
  func testScoresMatchNumpyAndPredictionsMatchTorchvision() throws {
    let fixture = try Self.fixture()
    let runs = [("plain", [String](), "tv_plain"), ("msflip", ["--scales", "0.75,1.25", "--flip"], "tv_msflip")]
    for (name, options, _) in runs {
      let result = try eval(fixture, options + [
        "--json", fixture.dir.appendingPathComponent("\(name).json").path,
        "--save-predictions", fixture.dir.appendingPathComponent(name).path,
      ])
      XCTAssertEqual(result.status, 0, result.error)
      XCTAssertTrue(result.output.contains("mIoU"), result.output)
    }
    let numpy = try JSONSerialization.jsonObject(with: Data(Oracle.run(Self.scoringScript, arguments: [
      fixture.root.path, "6",
    ] + runs.map { fixture.dir.appendingPathComponent($0.0).path + "=" + fixture.dir.appendingPathComponent($0.2).path }).utf8))
      as! [String: [String: Any]]
    for (name, _, _) in runs {
      let ours = try json(fixture.dir.appendingPathComponent("\(name).json"))
      let theirs = try XCTUnwrap(numpy[fixture.dir.appendingPathComponent(name).path])
      XCTAssertEqual(ours["confusion_matrix"] as? [[Int]], theirs["confusion_matrix"] as? [[Int]], name)
      let matrix = try XCTUnwrap(ours["confusion_matrix"] as? [[Int]])
      XCTAssertEqual(matrix.count, 6)
      XCTAssertEqual(matrix.joined().reduce(0, +), 4 * 64 * 64 - voidPixels(fixture), "void pixels are not counted")
      for key in ["mIoU", "pixel_accuracy", "mean_accuracy", "fwIoU"] {
        let value = try XCTUnwrap(ours[key] as? Double, key)
        XCTAssertEqual(value, try XCTUnwrap(theirs[key] as? Double), accuracy: 1e-12, "\(name) \(key)")
        XCTAssertTrue((0...1).contains(value), "\(key) is a fraction")
      }
      let iou = try XCTUnwrap(ours["per_class_iou"] as? [Any])
      let expected = try XCTUnwrap(theirs["per_class_iou"] as? [Any])
      XCTAssertEqual(iou.count, 6)
      for (a, b) in zip(iou, expected) {
        XCTAssertEqual((a as? Double) ?? -1, (b as? Double) ?? -1, accuracy: 1e-12, "\(name) per-class IoU (null where undefined)")
      }
      // Different JPEG decoders and float rounding may flip a near-tie, no more.
      XCTAssertGreaterThan(try XCTUnwrap(theirs["agreement"] as? Double), 0.995, "\(name): agreement with torchvision")
    }
  }

  private func voidPixels(_ fixture: Fixture) -> Int {
    let names = (try? String(contentsOf: fixture.root.appendingPathComponent("ImageSets/Segmentation/val.txt"), encoding: .utf8))?
      .split(separator: "\n") ?? []
    return names.reduce(0) { sum, name in
      let label = try? ImageIO.readLabel(fixture.root.appendingPathComponent("SegmentationClass/\(name).png"))
      return sum + (label?.pixels.filter { $0 == 255 }.count ?? 0)
    }
  }

  /// Multi-scale with flips, sliding windows, and all three together give PyTorch's scores.
  func testAveragingMatchesPyTorch() throws {
    let fixture = try Self.fixture()
    let references = try StateDict.load(contentsOf: fixture.dir.appendingPathComponent("references.safetensors"))
    let model = try ModelLoader.build(
      ModelManifest(model: "lraspp_mobilenet_v3_large", classes: 6), weights: try ModelLoader.readWeights(fixture.weights))
    let optimized = try ImageSegmenter(model: model)
    let image = try ImageIO.read(fixture.dir.appendingPathComponent("big.png"))
    let settings: [(String, InferenceSettings)] = [
      ("multiscale_flip", try InferenceSettings(scales: [0.5, 0.75, 1.25, 1.75], flip: true)),
      ("sliding", try InferenceSettings(crop: Size2(48, 64))),
      ("all", try InferenceSettings(scales: [0.75, 1.25], flip: true, crop: Size2(48, 64))),
    ]
    for (key, setting) in settings {
      let scores = try ImageSegmenter(borrowing: optimized.model, settings: setting, device: .cpu).scores(image)
      let expected = try XCTUnwrap(references[key], key)
      XCTAssertEqual(scores.shape, [1, 6, 72, 100], key)
      XCTAssertLessThan(try (scores - expected).abs().max().item(), 2e-4, key)
    }

    // A model mid-training is evaluated in evaluation mode and gets its own modes back, module by module.
    let classifier = try XCTUnwrap(model.child("classifier"))
    model.train()
    classifier.eval()
    let scores = try ImageSegmenter(borrowing: model, settings: try InferenceSettings(crop: Size2(48, 64)), device: .cpu)
      .scores(image)
    XCTAssertLessThan(try (scores - references["sliding"]!).abs().max().item(), 2e-4)
    XCTAssertTrue(model.isTraining && model.encoder.isTraining)
    XCTAssertFalse(classifier.isTraining)
  }

  /// The windows cover the side, overlap by the requested fraction and end flush with the border.
  func testWindowPlacement() {
    XCTAssertEqual(InferenceSettings.windowStarts(length: 40, window: 48, overlap: 1.0 / 3), [0])
    XCTAssertEqual(InferenceSettings.windowStarts(length: 48, window: 48, overlap: 1.0 / 3), [0])
    XCTAssertEqual(InferenceSettings.windowStarts(length: 100, window: 64, overlap: 1.0 / 3), [0, 36])
    XCTAssertEqual(InferenceSettings.windowStarts(length: 1024, window: 512, overlap: 1.0 / 3), [0, 341, 512])
    XCTAssertEqual(InferenceSettings.windowStarts(length: 10, window: 4, overlap: 0), [0, 4, 6])
    XCTAssertThrowsError(try InferenceSettings(scales: []))
    XCTAssertThrowsError(try InferenceSettings(overlap: 1))
  }

  /// `--run` takes the model and classes from model.json, the dataset and evaluation
  /// settings from config.yaml and the weights from the latest checkpoint (skipping an unreadable newer one).
  func testRunFolderGivesTheSameScores() throws {
    let fixture = try Self.fixture()
    let run = fixture.dir.appendingPathComponent("run")
    var config = TrainingConfig()
    config.model.name = "lraspp_mobilenet_v3_large"
    config.data.numClasses = 6
    config.data.dataset = "pascal_voc"
    config.data.datasetDir = fixture.root.path
    config.evaluation.evalScales = [0.75, 1.25]
    config.evaluation.addFlippedImages = true
    try FileManager.default.createDirectory(at: run.appendingPathComponent("checkpoints"), withIntermediateDirectories: true)
    try config.yaml().write(to: run.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
    try ModelManifest(model: "lraspp_mobilenet_v3_large", classes: 6).write(to: RunLayout(run).manifestURL)
    let weights = try StateDict.load(contentsOf: fixture.weights)
    let store = CheckpointStore(directory: run.appendingPathComponent("checkpoints"), keep: 0)
    try store.save(Checkpoint(model: weights, metadata: CheckpointMetadata(step: 10)))
    try Data("truncated".utf8).write(to: store.url(forStep: 20))

    let fromRun = fixture.dir.appendingPathComponent("run.json")
    let result = try SegKitCommand.run(["eval", "--run", run.path, "--device", "cpu", "--json", fromRun.path])
    XCTAssertEqual(result.status, 0, result.error)
    XCTAssertTrue(result.error.contains("step-000020"), "the unreadable checkpoint is reported: \(result.error)")
    let direct = fixture.dir.appendingPathComponent("direct.json")
    XCTAssertEqual(try eval(fixture, ["--scales", "0.75,1.25", "--flip", "--json", direct.path]).status, 0)
    XCTAssertEqual(
      try JSONDecoder().decode(SegmentationScores.self, from: Data(contentsOf: fromRun)),
      try JSONDecoder().decode(SegmentationScores.self, from: Data(contentsOf: direct)))
  }

  /// Bad input fails with a message naming the problem, a non-zero status, and an
  /// earlier JSON file left as it was.
  func testBadInputIsAClearErrorAndKeepsEarlierResults() throws {
    let fixture = try Self.fixture()
    let earlier = fixture.dir.appendingPathComponent("earlier.json")
    try Data("{\"mIoU\": 0.5}".utf8).write(to: earlier)
    let json = ["--json", earlier.path]
    let missing = fixture.dir.appendingPathComponent("no-such-dataset").path
    let cases: [(String, [String], [String])] = [
      ("missing dataset", ["eval", "--model", "lraspp_mobilenet_v3_large", "--weights", fixture.weights.path,
                           "--dataset", "voc", "--dataset-dir", missing] + json, [missing, "no such folder"]),
      ("wrong classes", ["eval", "--model", "lraspp_mobilenet_v3_large", "--weights", fixture.weights.path,
                         "--classes", "5", "--dataset", "voc", "--dataset-dir", fixture.root.path] + json,
       ["model.pth", "does not fit lraspp_mobilenet_v3_large with 5 classes"]),
      ("unknown model", ["eval", "--model", "lraspp_mobilenet_v9", "--weights", fixture.weights.path,
                         "--dataset", "voc", "--dataset-dir", fixture.root.path] + json, ["unknown model 'lraspp_mobilenet_v9'"]),
      ("unknown dataset", ["eval", "--model", "lraspp_mobilenet_v3_large", "--weights", fixture.weights.path,
                           "--dataset", "kitti", "--dataset-dir", fixture.root.path] + json, ["unknown dataset 'kitti'"]),
      ("no weights", ["eval", "--model", "lraspp_mobilenet_v3_large", "--dataset", "voc",
                      "--dataset-dir", fixture.root.path] + json, ["--weights"]),
      ("not a run", ["eval", "--run", fixture.root.path] + json, [fixture.root.path, "config.yaml"]),
      ("bad scales", ["eval", "--model", "lraspp_mobilenet_v3_large", "--weights", fixture.weights.path,
                      "--dataset", "voc", "--dataset-dir", fixture.root.path, "--scales", "1,-2"] + json, ["--scales"]),
      ("bad precision", ["eval", "--model", "lraspp_mobilenet_v3_large", "--weights", fixture.weights.path,
                         "--dataset", "voc", "--dataset-dir", fixture.root.path, "--precision", "fp16"] + json,
       ["--precision must be fp32, bf16 or int8, got 'fp16'"]),
      ("bad calibration", ["eval", "--model", "lraspp_mobilenet_v3_large", "--weights", fixture.weights.path,
                           "--dataset", "voc", "--dataset-dir", fixture.root.path, "--precision", "int8",
                           "--calibration-images", "0"] + json, ["--calibration-images must be 1 to 256, got 0"]),
    ]
    for (name, arguments, fragments) in cases {
      let result = try SegKitCommand.run(arguments)
      XCTAssertNotEqual(result.status, 0, name)
      for fragment in fragments {
        XCTAssertTrue(result.error.contains(fragment), "\(name): expected '\(fragment)' in: \(result.error)")
      }
      XCTAssertEqual(try String(contentsOf: earlier, encoding: .utf8), "{\"mIoU\": 0.5}", name)
    }
  }

  /// bf16 and int8 are measured against fp32 by the tool itself, on a model trained
  /// briefly on the synthetic data (so that mIoU means something): the scores the
  /// reduced path gives, the change in mIoU (int8 within 2 points after calibrating on
  /// training images, bf16 within 1), the largest logit difference and the speed-up.
  func testReducedPrecisionIsMeasuredAgainstFP32() throws {
    let dir = try Oracle.temporaryDirectory("segkit-eval-precision")
    defer { try? FileManager.default.removeItem(at: dir) }
    let data = dir.appendingPathComponent("data"), run = dir.appendingPathComponent("run")
    XCTAssertEqual(try SegKitCommand.run(["data", "synth", "--kind", "semantic", "--out", data.path, "--train", "96",
                                          "--val", "16", "--image-size", "64"]).status, 0)
    let config = Oracle.packageRoot.appendingPathComponent("configs/demo.yaml").path
    let trained = try SegKitCommand.run([
      "train", "--config", config, "--set", "dataset_dir=\(data.path)", "--set", "training_number_of_steps=120",
      "--set", "train_crop_size=[64,64]", "--set", "val_interval=0", "--set", "checkpoint_interval=120",
      "--run", run.path, "--plain"])
    XCTAssertEqual(trained.status, 0, trained.error)
    let fp32JSON = dir.appendingPathComponent("fp32.json")
    XCTAssertEqual(try SegKitCommand.run(["eval", "--run", run.path, "--json", fp32JSON.path]).status, 0)
    let fp32 = try JSONDecoder().decode(SegmentationScores.self, from: Data(contentsOf: fp32JSON))
    XCTAssertGreaterThan(fp32.meanIoU, 0.3, "the model learnt something, so a change in mIoU means something")
    for (precision, points, logits) in [("int8", 2.0, 3.0), ("bf16", 1.0, 0.5)] {
      let json = dir.appendingPathComponent("\(precision).json"), predictions = dir.appendingPathComponent(precision)
      let result = try SegKitCommand.run(["eval", "--run", run.path, "--precision", precision, "--calibration-images", "4",
                                          "--json", json.path, "--save-predictions", predictions.path])
      if precision == "bf16" && !Torch.cpuHasBFloat16Convolutions {
        XCTAssertEqual(result.status, 1, result.error)
        XCTAssertTrue(result.error.contains("bf16 needs a CPU with bfloat16 convolutions"), result.error)
        continue
      }
      XCTAssertEqual(result.status, 0, result.error)
      XCTAssertTrue(result.output.contains("precision: \(precision) against fp32: mIoU"), result.output)
      let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
      let report = try XCTUnwrap(object["precision"] as? [String: Any], precision)
      XCTAssertEqual(report["precision"] as? String, precision)
      let reducedMIoU = try XCTUnwrap(object["mIoU"] as? Double), reportedMIoU = try XCTUnwrap(report["mIoU"] as? Double)
      XCTAssertEqual(reducedMIoU, reportedMIoU, "the scores are the reduced path's")
      XCTAssertEqual(try XCTUnwrap(report["fp32_mIoU"] as? Double), fp32.meanIoU, accuracy: 1e-12, precision)
      let change = try XCTUnwrap(report["mIoU_change_points"] as? Double)
      XCTAssertEqual(change, (reducedMIoU - fp32.meanIoU) * 100, accuracy: 1e-9)
      XCTAssertLessThanOrEqual(abs(change), points, "\(precision): mIoU change in points")
      let difference = try XCTUnwrap(report["largest_score_difference"] as? Double)
      XCTAssertGreaterThan(difference, 0, "\(precision) computes differently from fp32")
      XCTAssertLessThan(difference, logits, "\(precision): largest logit difference")
      XCTAssertGreaterThan(try XCTUnwrap(report["speed_up"] as? Double), 0)
      let written = try FileManager.default.contentsOfDirectory(atPath: predictions.path).filter { $0.hasSuffix(".png") }
      XCTAssertEqual(written.count, 16, precision)
    }
    // Measured kernels (fp32, Winograd where it measures faster) are compared the same way.
    let json = dir.appendingPathComponent("measured.json")
    let measured = try SegKitCommand.run(["eval", "--run", run.path, "--measure-kernels", "--json", json.path])
    XCTAssertEqual(measured.status, 0, measured.error)
    XCTAssertTrue(measured.output.contains("precision: fp32 with measured kernels against fp32: mIoU"), measured.output)
    let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any])
    let report = try XCTUnwrap(object["precision"] as? [String: Any])
    XCTAssertEqual(report["measured_kernels"] as? Bool, true)
    XCTAssertLessThanOrEqual(abs(try XCTUnwrap(report["mIoU_change_points"] as? Double)), 0.5)
    XCTAssertLessThan(try XCTUnwrap(report["largest_score_difference"] as? Double), 0.01)
    let refused = try SegKitCommand.run(["eval", "--run", run.path, "--measure-kernels", "--precision", "bf16"])
    XCTAssertNotEqual(refused.status, 0)
    XCTAssertTrue(refused.error.contains("--measure-kernels chooses between oneDNN's fp32 or int8 kernels and Winograd's: not with --precision bf16"), refused.error)
  }
}
