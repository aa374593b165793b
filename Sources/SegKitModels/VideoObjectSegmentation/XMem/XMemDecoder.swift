import SegKitNN

/// XMem's decoder: each object's memory readout (with its hidden state) fused with the
/// stride-16 image feature, upsampled through the key encoder's stride-8 and stride-4
/// features, one logit map per object at stride 4, upsampled ×4 before the sigmoid.
/// With a hidden state, the decoder also updates it from its three scales.
public final class XMemDecoder: Module {
  let fuser: FeatureFusionBlock
  let hiddenUpdate: DecoderHiddenUpdate?
  let up16to8: UpsampleBlock
  let up8to4: UpsampleBlock
  let pred: Conv2d

  init(valueChannels: Int, hiddenChannels: Int) throws {
    fuser = try FeatureFusionBlock(imageChannels: 1024, groupChannels: valueChannels + hiddenChannels, middleChannels: 512, outChannels: 512)
    hiddenUpdate = hiddenChannels > 0
      ? try DecoderHiddenUpdate(channels: (512, 256, 256 + 1), middleChannels: 256, hiddenChannels: hiddenChannels) : nil
    up16to8 = try UpsampleBlock(skipChannels: 512, upChannels: 512, outChannels: 256)
    up8to4 = try UpsampleBlock(skipChannels: 256, upChannels: 256, outChannels: 256)
    pred = try Conv2d(256, 1, kernelSize: 3, padding: 1)
    super.init()
    registerModule("fuser", fuser)
    if let hiddenUpdate { registerModule("hidden_update", hiddenUpdate) }
    registerModule("up_16_8", up16to8)
    registerModule("up_8_4", up8to4)
    registerModule("pred", pred)
  }

  /// - Parameters:
  ///   - readout: [B, O, C^v, H/16, W/16]; `hidden`: [B, O, C^h, H/16, W/16] or nil.
  ///   - updateHidden: whether to compute the new hidden state (XMem's `h_out`).
  /// - Returns: the new hidden state (nil when not updated) and the logits [B, O, H, W].
  public func forward(
    f16: Tensor, f8: Tensor, f4: Tensor, readout: Tensor, hidden: Tensor?, updateHidden: Bool
  ) throws -> (hidden: Tensor?, logits: Tensor) {
    let batch = readout.shape[0], objects = readout.shape[1]
    let groups = try hiddenUpdate != nil && hidden != nil ? Tensor.cat([readout, hidden!], dim: 2) : readout
    let g16 = try fuser.forward(image: f16, groups: groups)
    let g8 = try up16to8.forward(skip: f8, up: g16)
    let g4 = try up8to4.forward(skip: f4, up: g8)
    let logits4 = try pred.forward(g4.flattenedGroups().relu())
    var newHidden: Tensor?
    if updateHidden, let hiddenUpdate, let hidden {
      let g4WithLogits = try Tensor.cat([g4, logits4.unflattenedGroups(batch: batch, objects: objects)], dim: 2)
      newHidden = try hiddenUpdate.forward(g16: g16, g8: g8, g4: g4WithLogits, hidden: hidden)
    }
    let logits = try logits4.interpolate(scaleFactor: 4, mode: .bilinear, alignCorners: false)
    return (newHidden, try logits.view([batch, objects, logits.shape[2], logits.shape[3]]))
  }
}

/// STM's soft aggregation, as XMem merges its objects: background = ∏(1 − pᵢ) is put
/// first, all clamped to [1e-7, 1 − 1e-7], turned to logits and renormalised by a
/// softmax over the objects (`dim`). Returns the logits and the probabilities, background first.
public func softAggregate(_ probabilities: Tensor, dim: Int) throws -> (logits: Tensor, probabilities: Tensor) {
  let background = try (1 - probabilities).prod(dims: [dim], keepDim: true)
  let withBackground = try Tensor.cat([background, probabilities], dim: dim).clamp(min: 1e-7, max: 1 - 1e-7)
  let logits = try (withBackground / (1 - withBackground)).log()
  return (logits, try logits.softmax(dim: dim))
}
