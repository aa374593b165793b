import Foundation
import SegKitModels

/// XMem's losses over a clip's segmented frames: per frame, the bootstrapped
/// cross-entropy of each clip over its real objects (averaged over the batch) plus the
/// Dice loss of every object slot; summed over the frames.
public struct XMemLoss {
  /// Before `startWarm` steps the cross-entropy is over every pixel; from `endWarm` on,
  /// over the hardest `topP` of them; in between the share falls linearly.
  public var startWarm: Int
  public var endWarm: Int
  public var topP = 0.15

  public init(startWarm: Int, endWarm: Int, topP: Double = 0.15) {
    (self.startWarm, self.endWarm, self.topP) = (startWarm, endWarm, topP)
  }

  /// The share of pixels the cross-entropy keeps at `step`.
  public func share(at step: Int) -> Double {
    if step < startWarm { return 1 }
    if step > endWarm { return topP }
    return topP + (1 - topP) * Double(endWarm - step) / Double(endWarm - startWarm)
  }

  /// XMem's bootstrapped cross-entropy of logits [1, C, H, W] against classes [1, H, W].
  public func bootstrappedCrossEntropy(_ logits: Tensor, _ target: Tensor, step: Int) throws -> Tensor {
    guard step >= startWarm else { return try logits.crossEntropy(target: target) }
    let raw = try logits.crossEntropy(target: target, reduction: .none).flatten()
    let kept = Int(Double(raw.count) * share(at: step))
    return try raw.topk(max(1, kept), dim: 0).values.mean()
  }

  /// 1 − (2·Σ m·g + 1) / (Σ m + Σ g + 1) per clip and object slot, averaged; objects are
  /// classes 1…O of `classes` [B, H, W].
  public static func dice(_ masks: Tensor, _ classes: Tensor) throws -> Tensor {
    let (batch, objects) = (masks.shape[0], masks.shape[1])
    let losses = try (0..<objects).map { i -> Tensor in
      let mask = try masks.select(dim: 1, index: i).reshape([batch, -1])
      let truth = try (classes .== Double(i + 1)).to(masks.dtype).reshape([batch, -1])
      let numerator = try 2 * (mask * truth).sum(dim: -1)
      let denominator = try mask.sum(dim: -1) + truth.sum(dim: -1)
      return try 1 - (numerator + 1) / (denominator + 1)
    }
    return try Tensor.cat(losses).mean()
  }

  /// The total and its parts (`ce_t`, `dice_t`) over frames 1…T−1; `classes` [B, T, H, W],
  /// `objects[b]` the real objects of clip b.
  public func callAsFunction(_ frames: [XMemClipPass.Frame], classes: Tensor, objects: [Int], step: Int) throws -> LossTerms {
    let batch = classes.shape[0]
    var total: Tensor?
    var parts: [(name: String, value: Tensor)] = []
    for (index, frame) in frames.enumerated() {
      let t = index + 1
      var crossEntropy: Tensor?
      for b in 0..<batch {
        let logits = try frame.logits.narrow(dim: 0, start: b, length: 1).narrow(dim: 1, start: 0, length: objects[b] + 1)
        let target = try classes.narrow(dim: 0, start: b, length: 1).select(dim: 1, index: t)
        let loss = try bootstrappedCrossEntropy(logits, target, step: step) / Double(batch)
        crossEntropy = try crossEntropy.map { try $0 + loss } ?? loss
      }
      let dice = try Self.dice(frame.masks, classes.select(dim: 1, index: t))
      parts += [("ce_\(t)", crossEntropy!), ("dice_\(t)", dice)]
      let frameTotal = try crossEntropy! + dice
      total = try total.map { try $0 + frameTotal } ?? frameTotal
    }
    guard let total else { throw TrainingError("XMem's loss needs at least one segmented frame") }
    return LossTerms(total: total, parts: parts)
  }
}
