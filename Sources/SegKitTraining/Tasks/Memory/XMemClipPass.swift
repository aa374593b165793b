import Foundation
import SegKitModels

/// XMem's training pass over a batch of clips (its trainer's `do_pass`): every frame's
/// key computed once; the first frame's given masks memorised; then each later frame
/// read from the memory of earlier frames (all of them while there are at most
/// `referenceFrames`, else the first and `referenceFrames − 1` others at random),
/// segmented, and (but the last) memorised with its predicted masks, the hidden state
/// updated by the decoder and, on a deep update, by the value encoder.
public struct XMemClipPass {
  /// Each segmented frame's (1…T−1) logits [B, 1 + O, H, W] and object probabilities [B, O, H, W].
  public struct Frame {
    public let logits: Tensor
    public let masks: Tensor
  }

  public let network: XMem
  public let referenceFrames: Int

  public init(network: XMem, referenceFrames: Int) {
    (self.network, self.referenceFrames) = (network, referenceFrames)
  }

  /// - Parameters:
  ///   - frames: [B, T, 3, H, W], normalised; `firstMasks`: [B, O, H, W], the first frame's
  ///     objects (0/1); `selector`: [B, O], 1 for each real object.
  ///   - deepUpdates: for frames 1…T−2, whether the value encoder updates the hidden state
  ///     (XMem draws each with probability `deep_update_prob`).
  ///   - referenceIndices: for frame t > `referenceFrames`, each clip's memory frames
  ///     (XMem: frame 0 and a random choice of the others before t).
  public func callAsFunction(
    frames: Tensor, firstMasks: Tensor, selector: Tensor, deepUpdates: [Bool], referenceIndices: (Int) -> [[Int]]
  ) throws -> [Frame] {
    let (batch, length) = (frames.shape[0], frames.shape[1])
    guard frames.rank == 5, length >= 2, deepUpdates.count >= length - 2 else {
      throw TrainingError("XMem's training pass needs clips [B, T ≥ 2, 3, H, W] and a deep-update choice per middle frame, got \(frames.shape)")
    }
    let encoded = try network.encodeKey(frames.flatten(startDim: 0, endDim: 1))
    func perClip(_ t: Tensor?) throws -> Tensor? { try t.map { try $0.view([batch, length] + $0.shape.dropFirst()) } }
    // Keys as XMem keeps them in training: [B, C, T, h, w].
    func timeSecond(_ t: Tensor?) throws -> Tensor? { try perClip(t)?.transpose(1, 2) }
    let key = try timeSecond(encoded.key)!, shrinkage = try timeSecond(encoded.shrinkage), selection = try timeSecond(encoded.selection)
    let f16 = try perClip(encoded.features.f16)!, f8 = try perClip(encoded.features.f8)!, f4 = try perClip(encoded.features.f4)!
    func at(_ t: Tensor, _ index: Int) throws -> Tensor { try t.select(dim: 1, index: index) }
    func frameAt(_ t: Tensor?, _ index: Int) throws -> Tensor? { try t?.select(dim: 2, index: index) }

    let objects = firstMasks.shape[1]
    var hidden: Tensor? = network.hasHiddenState
      ? try Tensor.zeros([batch, objects, network.dimensions.hidden, key.shape[3], key.shape[4]], device: frames.device) : nil
    let first = try network.encodeValue(frame: at(frames, 0), f16: at(f16, 0), hidden: hidden, masks: firstMasks)
    hidden = first.hidden
    var values = try first.value.unsqueeze(3)  // [B, O, C^v, T, h, w]
    var outputs: [Frame] = []
    for t in 1..<length {
      var (memoryKey, memoryShrinkage, memoryValues) = (try key.slice(dim: 2, start: 0, end: t), try shrinkage?.slice(dim: 2, start: 0, end: t), values)
      if t > referenceFrames {
        let chosen = referenceIndices(t)
        func pick(_ tensor: Tensor, dim: Int) throws -> Tensor {
          try Tensor.stack(try (0..<batch).map { b in
            try tensor.select(dim: 0, index: b).indexSelect(dim: dim - 1, index: Tensor(chosen[b].map(Int64.init)).to(tensor.device))
          })
        }
        memoryKey = try pick(key, dim: 2)
        memoryShrinkage = try shrinkage.map { try pick($0, dim: 2) }
        memoryValues = try pick(values, dim: 3)
      }
      let readout = try network.readMemory(queryKey: try frameAt(key, t)!, selection: try frameAt(selection, t), memoryKey: memoryKey,
                                           shrinkage: memoryShrinkage, values: memoryValues)
      let isLast = t == length - 1
      let segmented = try network.segment(features: (try at(f16, t), try at(f8, t), try at(f4, t)), readout: readout, hidden: hidden,
                                          updateHidden: !isLast, selector: selector)
      let masks = try segmented.probabilities.slice(dim: 1, start: 1)
      outputs.append(Frame(logits: segmented.logits, masks: masks))
      guard !isLast else { break }
      hidden = segmented.hidden ?? hidden
      let value = try network.encodeValue(frame: at(frames, t), f16: at(f16, t), hidden: hidden, masks: masks, deepUpdate: deepUpdates[t - 1])
      hidden = value.hidden
      values = try Tensor.cat([values, value.value.unsqueeze(3)], dim: 3)
    }
    return outputs
  }
}
