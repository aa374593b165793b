import Foundation
import SegKitTestSupport
import SegKitTraining
import XCTest

/// The trainer against PyTorch (the same K steps give the same weights), resuming
/// against an uninterrupted run, the run folder's contents, and bad input.
final class TrainerTests: XCTestCase {
  var root: URL!

  override func setUpWithError() throws { root = try Oracle.temporaryDirectory("segkit-trainer") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  static let classes = 6

  /// Synthetic scenes as a folder dataset of PNGs (lossless, so both sides read the same pixels).
  func writeDataset(train: Int, val: Int, size: Int = 64, badLabel: Bool = false) throws -> URL {
    let dataset = root.appendingPathComponent("data")
    for folder in ["images", "masks", "splits"] {
      try FileManager.default.createDirectory(at: dataset.appendingPathComponent(folder), withIntermediateDirectories: true)
    }
    for (split, count) in [("train", train), ("val", val)] {
      var names: [String] = []
      for index in 0..<count {
        var (image, label) = Synthetic.semanticSample(seed: 1, split: split, index: index, width: size, height: size)
        if badLabel && split == "train" && index == 1 { label[3, 3, 0] = 9 }
        let name = "\(split)_\(index)"
        try ImageIO.writePNG(image, to: dataset.appendingPathComponent("images/\(name).png"))
        try ImageIO.writePNG(label, to: dataset.appendingPathComponent("masks/\(name).png"), palette: .pascal)
        names.append(name)
      }
      try (names.joined(separator: "\n") + "\n").write(
        to: dataset.appendingPathComponent("splits/\(split).txt"), atomically: true, encoding: .utf8)
    }
    return dataset
  }

  func baseConfig(dataset: URL) throws -> TrainingConfig {
    var config = TrainingConfig()
    try config.apply(yaml: """
      dataset: folder
      dataset_dir: \(dataset.path)
      val_split: ""
      model: deeplabv3_mobilenet_v3_large
      train_crop_size: [64, 64]
      train_batch_size: 2
      min_scale_factor: 1.0
      max_scale_factor: 1.0
      flip_probability: 0.0
      shuffle: false
      training_number_of_steps: 4
      base_learning_rate: 0.02
      momentum: 0.9
      weight_decay: 0.001
      aux_loss_weight: 0.4
      last_layers_contain_logits_only: true
      last_layer_gradient_multiplier: 10
      log_interval: 1
      workers: 0
      seed: 3
      """)
    config.data.numClasses = Self.classes
    return config
  }

  func weights(_ run: URL) throws -> StateDict {
    try StateDict.load(contentsOf: run.appendingPathComponent("model.safetensors"))
  }

  // MARK: PyTorch parity

  static let parityScript = #"""
    import json, sys
    import numpy as np, torch, torch.nn.functional as F
    from PIL import Image
    from safetensors.torch import load_file
    from torchvision.models.segmentation import deeplabv3_mobilenet_v3_large

    root, init, swift_weights = sys.argv[1:4]
    seed, steps, batch, base_lr, wd, mult, aux_w = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), *map(float, sys.argv[7:11])
    torch.set_num_threads(2)
    names = open(root + "/splits/train.txt").read().split()
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    # The loader's float32 arithmetic: x * (1 / (255 std)) - mean / std.
    scale, shift = np.float32(1) / (np.float32(255) * std), mean / std

    def sample(name):
        image = np.asarray(Image.open(f"{root}/images/{name}.png").convert("RGB")).astype(np.float32).transpose(2, 0, 1)
        x = image * scale[:, None, None] - shift[:, None, None]
        y = np.asarray(Image.open(f"{root}/masks/{name}.png")).astype(np.int64)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)

    make = lambda c: deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=c, aux_loss=True)
    model = make(6)
    w0 = load_file(init)
    model.load_state_dict(w0)
    wider = make(7).state_dict()
    last = {k for k, v in model.state_dict().items() if wider[k].shape != v.shape}
    named = list(model.named_parameters())
    groups = [{"params": [p for k, p in named if k not in last], "mult": 1.0},
              {"params": [p for k, p in named if k in last], "mult": mult}]
    optimizer = torch.optim.SGD(groups, lr=base_lr, momentum=0.9, weight_decay=wd)
    model.train()
    per_epoch = len(names) // batch
    for step in range(steps):
        b = step % per_epoch
        xs, ys = zip(*[sample(n) for n in names[b * batch:(b + 1) * batch]])
        x, y = torch.stack(xs), torch.stack(ys)
        torch.manual_seed(seed * 1000003 + step)
        out = model(x)
        loss = F.cross_entropy(out["out"], y, ignore_index=255) + F.cross_entropy(out["aux"], y, ignore_index=255) * aux_w
        loss.backward()
        lr = base_lr * (1 - step / steps) ** 0.9
        for g in optimizer.param_groups:
            g["lr"] = lr * g["mult"]
        optimizer.step()
        optimizer.zero_grad()

    mine = load_file(swift_weights)
    worst_weight, worst_delta = (0.0, ""), (0.0, "")
    for k, t in model.state_dict().items():
        if not t.is_floating_point():
            assert torch.equal(t, mine[k]), k
            continue
        diff = (mine[k] - t).norm().item()
        worst_weight = max(worst_weight, (diff / max(t.norm().item(), 1e-12), k))
        moved = (t - w0[k]).norm().item()
        if moved > 0:
            worst_delta = max(worst_delta, (diff / moved, k))
    print(json.dumps({"weight": worst_weight, "delta": worst_delta}))
    """#

  /// K steps of SegKit training equal K steps of the same loop in PyTorch (torchvision's
  /// model, torch.optim.SGD): same initial weights, data in file order without augmentation,
  /// momentum, weight decay, poly decay, a 10× logits multiplier, the auxiliary loss, batch
  /// norm in training mode, and dropout with the same seeds.
  func testStepsMatchPyTorch() throws {
    try SlowTest.skipInFastTier()
    let dataset = try writeDataset(train: 4, val: 0)
    Torch.manualSeed(11)
    let initial = root.appendingPathComponent("init.safetensors")
    try StateDict(try ModelZoo.make("deeplabv3_mobilenet_v3_large", classes: Self.classes).stateDict()).save(to: initial)
    var config = try baseConfig(dataset: dataset)
    config.initialization.initialCheckpoint = initial.path
    let run = root.appendingPathComponent("run")
    let outcome = try Trainer(config: config, runFolder: run).train()
    guard case .finished(let step, _) = outcome else { return XCTFail("\(outcome)") }
    XCTAssertEqual(step, 4)

    let output = try Oracle.run(Self.parityScript, arguments: [
      dataset.path, initial.path, run.appendingPathComponent("model.safetensors").path, "3", "4", "2", "0.02", "0.001",
      "10", "0.4",
    ])
    let result = try JSONSerialization.jsonObject(with: Data(output.utf8)) as! [String: [Any]]
    let weight = result["weight"]![0] as! Double, delta = result["delta"]![0] as! Double
    print("parity: max relative weight error \(weight) (\(result["weight"]![1])), of the change \(delta) (\(result["delta"]![1]))")
    XCTAssertLessThan(weight, 1e-4)
    // The updates themselves, not just the weights they move, agree.
    XCTAssertLessThan(delta, 1e-3)
  }

  // MARK: Resume

  /// Settings that make resuming hard: shuffling, random scale and flip, validation mid-run.
  static let shuffledAugmentedAndValidated = """
    shuffle: true
    min_scale_factor: 0.75
    max_scale_factor: 1.5
    scale_factor_step_size: 0.25
    flip_probability: 0.5
    val_split: val
    val_interval: 2
    checkpoint_interval: 100
    """

  /// 2 steps, stop, resume for 2 more: bitwise the weights of 4 uninterrupted steps, with
  /// shuffling, scale and flip augmentation, dropout and an epoch boundary (3 batches an epoch).
  func testResumeEqualsUninterrupted() throws {
    let dataset = try writeDataset(train: 6, val: 2)
    var config = try baseConfig(dataset: dataset)
    try config.apply(yaml: Self.shuffledAugmentedAndValidated)
    let whole = root.appendingPathComponent("whole"), parts = root.appendingPathComponent("parts")
    guard case .finished = try Trainer(config: config, runFolder: whole).train() else { return XCTFail("not finished") }

    let first = try Trainer(config: config, runFolder: parts).train(stopAfterSteps: 2)
    guard case .interrupted(2, let checkpoint) = first else { return XCTFail("\(first)") }
    XCTAssertEqual(checkpoint?.lastPathComponent, "step-000002.safetensors")
    let resumed = try Trainer(resuming: parts)
    XCTAssertEqual(resumed.step, 2)
    guard case .finished(4, _) = try resumed.train() else { return XCTFail("not finished") }

    let a = try weights(whole), b = try weights(parts)
    XCTAssertEqual(a.names, b.names)
    for (name, tensor) in a {
      XCTAssertTrue(try tensor.allClose(b[name]!, rtol: 0, atol: 0), name)
    }

    // The run folder: config, log, checkpoints, events with every tag.
    let files = try FileManager.default.contentsOfDirectory(atPath: parts.path)
    XCTAssertTrue(files.contains("config.yaml") && files.contains("train.log"), "\(files)")
    XCTAssertEqual(CheckpointStore(directory: parts.appendingPathComponent("checkpoints")).saved().map(\.step), [2, 4])
    let log = try String(contentsOf: parts.appendingPathComponent("train.log"), encoding: .utf8)
    XCTAssertTrue(log.contains("resuming at step 2 of 4"), log)
    let tags = try Oracle.run(#"""
      import sys
      from tensorboard.backend.event_processing import event_accumulator as ea
      acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0, ea.IMAGES: 0})
      acc.Reload()
      t = acc.Tags()
      print(" ".join(sorted(t["scalars"] + t["images"])), len(acc.Scalars("loss/total")))
      """#, arguments: [parts.path])
    XCTAssertEqual(
      tags.trimmingCharacters(in: .whitespacesAndNewlines),
      "learning_rate loss/aux loss/out loss/total throughput/images_per_second val/ground_truth val/image val/mIoU val/pixel_accuracy val/prediction 4")
  }

  // MARK: Bad input

  func testCheckpointWithOtherClassCountIsAClearError() throws {
    let dataset = try writeDataset(train: 4, val: 0)
    let checkpoint = root.appendingPathComponent("nine.safetensors")
    try StateDict(try ModelZoo.make("deeplabv3_mobilenet_v3_large", classes: 9).stateDict()).save(to: checkpoint)
    var config = try baseConfig(dataset: dataset)
    config.initialization.initialCheckpoint = checkpoint.path
    let run = root.appendingPathComponent("run")
    XCTAssertThrowsError(try Trainer(config: config, runFolder: run)) { error in
      XCTAssertTrue("\(error)".contains("was trained for 9 classes but this run has 6"), "\(error)")
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: run.path))
    // Starting the logits afresh loads the rest.
    config.initialization.initializeLastLayer = false
    XCTAssertNoThrow(try Trainer(config: config, runFolder: run))
  }

  func testOutOfRangeLabelIsAClearError() throws {
    let dataset = try writeDataset(train: 4, val: 0, badLabel: true)
    var config = try baseConfig(dataset: dataset)
    config.model.name = "fcn32s_resnet18"
    let trainer = try Trainer(config: config, runFolder: root.appendingPathComponent("run"))
    XCTAssertThrowsError(try trainer.train()) { error in
      XCTAssertTrue("\(error)".contains("label value 9 in train_1 lies outside the 6 classes"), "\(error)")
    }
  }
}
