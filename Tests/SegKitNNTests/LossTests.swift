import Foundation
import SegKitNN
import SegKitTestSupport
import XCTest

final class LossTests: XCTestCase {
  /// One oracle run for the whole class: inputs drawn in torch, and every loss and its
  /// gradient with respect to the logits, from F.* or from reference code written
  /// from each paper's definition.
  static let oracle = Result { try OracleTensors.run(lossScript) }

  private func oracle() throws -> OracleTensors { try Self.oracle.get() }

  // MARK: Cross entropy

  func testCrossEntropyMatchesTorch() throws {
    let o = try oracle()
    let weights = try o["class_weights"]
    let cases: [(String, (Tensor, Tensor) throws -> Tensor)] = [
      ("ce_mean", { try softmaxCrossEntropy(logits: $0, labels: $1) }),
      ("ce_weighted", { try softmaxCrossEntropy(logits: $0, labels: $1, classWeights: weights) }),
      ("ce_smoothed", { try softmaxCrossEntropy(logits: $0, labels: $1, classWeights: weights, labelSmoothing: 0.1) }),
      ("ce_sum", { try softmaxCrossEntropy(logits: $0, labels: $1, labelSmoothing: 0.2, reduction: .sum) }),
    ]
    for (name, loss) in cases {
      try assertLossAndGradient(name, o) { try loss($0, o["labels"]) }
    }
  }

  func testUnreducedCrossEntropyIsZeroOnIgnoredPixels() throws {
    let o = try oracle()
    let logits = try o["logits"]
    let perPixel = try softmaxCrossEntropy(
      logits: logits, labels: o["labels"], classWeights: o["class_weights"], reduction: .none)
    XCTAssertEqual(perPixel.shape, try o["labels"].shape)
    try assertClose(perPixel, o["ce_none"], "ce_none")
  }

  // MARK: Hard pixel mining

  func testHardPixelMiningRampsTheKeptFraction() {
    let mining = HardPixelMining(topKPercentPixels: 0.25, miningSteps: 100)
    XCTAssertEqual(mining.keptPixels(of: 1000, globalStep: 0), 1000)
    XCTAssertEqual(mining.keptPixels(of: 1000, globalStep: 50), 625)
    XCTAssertEqual(mining.keptPixels(of: 1000, globalStep: 100), 250)
    XCTAssertEqual(mining.keptPixels(of: 1000, globalStep: 5000), 250)
    XCTAssertEqual(HardPixelMining(topKPercentPixels: 0.25).keptPixels(of: 1000, globalStep: 0), 250)
  }

  func testHardPixelCrossEntropyMatchesTorchTopK() throws {
    let o = try oracle()
    let mining = HardPixelMining(topKPercentPixels: 0.3, miningSteps: 100)
    for step in [40, 200] {
      try assertLossAndGradient("hard_\(step)", o) {
        try hardPixelCrossEntropy(
          logits: $0, labels: o["labels"], mining: mining, globalStep: step, classWeights: o["class_weights"])
      }
    }
  }

  // MARK: Binary, Dice, Lovász, auxiliary

  func testClassBalancedBCEMatchesOSVOSFormula() throws {
    let o = try oracle()
    try assertLossAndGradient("bce_sum", o, logits: "binary_logits") {
      try classBalancedSigmoidCrossEntropy(logits: $0, labels: o["binary_labels"])
    }
    try assertLossAndGradient("bce_per_pixel", o, logits: "binary_logits") {
      try classBalancedSigmoidCrossEntropy(logits: $0, labels: o["binary_labels"], normalization: .perPixel)
    }
  }

  func testSoftDiceMatchesReference() throws {
    let o = try oracle()
    try assertLossAndGradient("dice", o) { try softDiceLoss(logits: $0, labels: o["labels"], smooth: 1) }
  }

  func testLovaszSoftmaxMatchesReference() throws {
    let o = try oracle()
    try assertLossAndGradient("lovasz_batch", o) { try lovaszSoftmaxLoss(logits: $0, labels: o["labels"]) }
    try assertLossAndGradient("lovasz_per_image", o) {
      try lovaszSoftmaxLoss(logits: $0, labels: o["labels"], perImage: true)
    }
    try assertLossAndGradient("lovasz_all_classes", o) {
      try lovaszSoftmaxLoss(logits: $0, labels: o["labels"], classes: .all)
    }
  }

  func testAuxiliaryLossIsWeightedSum() throws {
    let total = try lossWithAuxiliary(
      main: Tensor(scalar: 2), auxiliary: [Tensor(scalar: 1), Tensor(scalar: 3)], weight: 0.4)
    XCTAssertEqual(try total.item(), 2 + 0.4 * 4, accuracy: 1e-6)
  }

  // MARK: Helpers

  /// Evaluates `loss` on a fresh leaf copy of the oracle's logits and compares the value
  /// with `<name>` and the gradient with `<name>.grad`.
  private func assertLossAndGradient(
    _ name: String, _ o: OracleTensors, logits: String = "logits", _ loss: (Tensor) throws -> Tensor
  ) throws {
    let input = try o[logits].clone().requiresGrad(true)
    let value = try loss(input)
    try value.backward()
    try assertClose(value, o[name], name)
    try assertClose(XCTUnwrap(input.grad, "\(name): no gradient"), o["\(name).grad"], "\(name).grad")
  }
}


private let lossScript = """
  import torch.nn.functional as F
  torch.manual_seed(0)
  N, C, H, W = 2, 5, 6, 7
  logits = torch.randn(N, C, H, W) * 2
  labels = torch.randint(0, C, (N, H, W))
  labels[torch.rand(N, H, W) < 0.15] = 255
  labels[1, :, :] = torch.where(labels[1] == 4, 3, labels[1])  # class 4 absent from image 1
  class_weights = torch.rand(C) + 0.5
  save("logits", logits); save("labels", labels); save("class_weights", class_weights)

  def record(name, fn, inputs=logits):
      x = inputs.clone().requires_grad_(True)
      value = fn(x)
      value.backward()
      save(name, value); save(name + ".grad", x.grad)

  record("ce_mean", lambda x: F.cross_entropy(x, labels, ignore_index=255))
  record("ce_weighted", lambda x: F.cross_entropy(x, labels, weight=class_weights, ignore_index=255))
  record("ce_smoothed", lambda x: F.cross_entropy(x, labels, weight=class_weights, ignore_index=255, label_smoothing=0.1))
  record("ce_sum", lambda x: F.cross_entropy(x, labels, ignore_index=255, label_smoothing=0.2, reduction="sum"))
  save("ce_none", F.cross_entropy(logits, labels, weight=class_weights, ignore_index=255, reduction="none"))

  # DeepLab's hard example mining, with torch.topk.
  def hard(step, top_k=0.3, mining_steps=100):
      def fn(x):
          pixel = F.cross_entropy(x, labels, weight=class_weights, ignore_index=255, reduction="none").reshape(-1)
          ratio = min(1.0, step / mining_steps)
          k = int((ratio * top_k + (1.0 - ratio)) * pixel.numel())
          top = torch.topk(pixel, k).values
          present = float((top != 0).sum())
          return top.sum() / max(present, 1e-5)
      return fn
  record("hard_40", hard(40)); record("hard_200", hard(200))

  # OSVOS's class_balanced_cross_entropy_loss, transcribed term by term.
  binary_logits = torch.randn(2, 1, 6, 7) * 3
  binary_labels = (torch.rand(2, 1, 6, 7) > 0.7).float()
  save("binary_logits", binary_logits); save("binary_labels", binary_labels)
  def osvos(x, size_average):
      y = (binary_labels > 0.5).float()
      num_pos, num_neg = y.sum(), (1.0 - y).sum()
      num_total = num_pos + num_neg
      gt_zero = (x >= 0).float()
      loss_val = x * (y - gt_zero) - torch.log(1 + torch.exp(x - 2 * x * gt_zero))
      loss_pos = torch.sum(-y * loss_val)
      loss_neg = torch.sum(-(1.0 - y) * loss_val)
      loss = num_neg / num_total * loss_pos + num_pos / num_total * loss_neg
      return loss / y.numel() if size_average else loss
  record("bce_sum", lambda x: osvos(x, False), binary_logits)
  record("bce_per_pixel", lambda x: osvos(x, True), binary_logits)

  # Soft Dice from its definition, one class at a time.
  def dice(x, smooth=1.0):
      p = x.softmax(1)
      valid = (labels != 255).float()
      scores = []
      for c in range(C):
          t = (labels == c).float() * valid
          pc = p[:, c] * valid
          scores.append((2 * (pc * t).sum() + smooth) / (pc.sum() + t.sum() + smooth))
      return 1 - torch.stack(scores).mean()
  record("dice", dice)

  # Lovász-softmax from the paper: sort the errors, weight them by the discrete
  # derivative of the Jaccard loss along that order.
  def jaccard_weights(fg_sorted):
      total = fg_sorted.sum()
      jaccard = 1 - (total - fg_sorted.cumsum(0)) / (total + (1 - fg_sorted).cumsum(0))
      return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
  def lovasz_flat(p, y, only_present):
      keep = y != 255
      p, y = p[keep], y[keep]
      losses = []
      for c in range(C):
          fg = (y == c).float()
          if only_present and fg.sum() == 0:
              continue
          errors, order = torch.sort((fg - p[:, c]).abs(), descending=True)
          losses.append(torch.dot(errors, jaccard_weights(fg[order])))
      return torch.stack(losses).mean()
  def lovasz(x, per_image=False, only_present=True):
      p = x.softmax(1).permute(0, 2, 3, 1)
      if per_image:
          return torch.stack([lovasz_flat(p[i].reshape(-1, C), labels[i].reshape(-1), only_present) for i in range(N)]).mean()
      return lovasz_flat(p.reshape(-1, C), labels.reshape(-1), only_present)
  record("lovasz_batch", lovasz)
  record("lovasz_per_image", lambda x: lovasz(x, per_image=True))
  record("lovasz_all_classes", lambda x: lovasz(x, only_present=False))
  """
