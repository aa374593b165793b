import SegKitNN

/// ResNet stages as XMem keeps them: torchvision's blocks, no layer4.
private func resNetStages(_ block: ResNet.Block, layers: [Int]) throws -> [Sequential] {
  let expansion = block == .basic ? 1 : 4
  var inPlanes = 64
  return try zip([64, 128, 256], layers).enumerated().map { index, stage in
    let (planes, count) = stage
    let blocks: [any Layer] = try (0..<count).map { b in
      try ResidualBlock(block, inPlanes: b == 0 ? inPlanes : planes * expansion, planes: planes,
                        stride: b == 0 && index > 0 ? 2 : 1, dilation: 1)
    }
    inPlanes = planes * expansion
    return Sequential(blocks)
  }
}

/// XMem's key encoder: ResNet-50 to layer3, its stages named `res2`, `layer2`, `layer3`.
/// Returns the features at strides 16, 8 and 4 (1024, 512 and 256 channels).
public final class XMemKeyEncoder: Module, ConvBatchNormPairs {
  let conv1: Conv2d
  let bn1: BatchNorm2d
  let stages: [Sequential]

  init(layers: [Int] = [3, 4, 6]) throws {
    conv1 = try Conv2d(3, 64, kernelSize: 7, stride: 2, padding: 3, bias: false)
    bn1 = try BatchNorm2d(64)
    stages = try resNetStages(.bottleneck, layers: layers)
    super.init()
    registerModule("conv1", conv1)
    registerModule("bn1", bn1)
    for (name, stage) in zip(["res2", "layer2", "layer3"], stages) { registerModule(name, stage) }
  }

  public var convBatchNormPairs: [(Conv2d, BatchNorm2d)] { [(conv1, bn1)] }

  public func forward(_ frame: Tensor) throws -> (f16: Tensor, f8: Tensor, f4: Tensor) {
    let x = try bn1.forward(conv1.forward(frame)).relu().maxPool2d(kernel: 3, stride: 2, padding: 1)
    let f4 = try stages[0].forward(x)
    let f8 = try stages[1].forward(f4)
    return (try stages[2].forward(f8), f8, f4)
  }
}

/// XMem's value encoder: ResNet-18 to layer3 over the frame and each object's mask (and,
/// with several objects, the sum of the others'), pooled before its ReLU as XMem does,
/// fused with the key encoder's stride-16 feature; with a hidden state, the gated
/// update of it (`hidden_reinforce`) on deep updates.
public final class XMemValueEncoder: Module, ConvBatchNormPairs {
  public let singleObject: Bool
  let conv1: Conv2d
  let bn1: BatchNorm2d
  let stages: [Sequential]
  let fuser: FeatureFusionBlock
  let hiddenReinforce: GatedHiddenUpdate?

  init(valueChannels: Int, hiddenChannels: Int, singleObject: Bool) throws {
    self.singleObject = singleObject
    conv1 = try Conv2d(singleObject ? 4 : 5, 64, kernelSize: 7, stride: 2, padding: 3, bias: false)
    bn1 = try BatchNorm2d(64)
    stages = try resNetStages(.basic, layers: [2, 2, 2])
    fuser = try FeatureFusionBlock(imageChannels: 1024, groupChannels: 256, middleChannels: valueChannels, outChannels: valueChannels)
    hiddenReinforce = hiddenChannels > 0 ? try GatedHiddenUpdate(inputChannels: valueChannels, hiddenChannels: hiddenChannels) : nil
    super.init()
    registerModule("conv1", conv1)
    registerModule("bn1", bn1)
    for (index, stage) in stages.enumerated() { registerModule("layer\(index + 1)", stage) }
    registerModule("fuser", fuser)
    if let hiddenReinforce { registerModule("hidden_reinforce", hiddenReinforce) }
  }

  public var convBatchNormPairs: [(Conv2d, BatchNorm2d)] { [(conv1, bn1)] }

  /// - Parameters:
  ///   - frame: [B, 3, H, W], normalised; `imageFeature`: the key encoder's f16.
  ///   - masks: [B, O, H, W], each object's probability.
  ///   - hidden: [B, O, C^h, H/16, W/16], or nil without a hidden state.
  /// - Returns: the values [B, O, C^v, H/16, W/16] and the hidden state (updated when `deepUpdate`).
  public func forward(
    frame: Tensor, imageFeature: Tensor, masks: Tensor, hidden: Tensor?, deepUpdate: Bool
  ) throws -> (value: Tensor, hidden: Tensor?) {
    let objects = masks.shape[1]
    var maskChannels = try masks.unsqueeze(2)
    if !singleObject {
      // Each object's "others" channel: the sum of every other object's mask.
      // Summed directly (not total minus own) to round as XMem does.
      // (Narrows and products, which an ONNX export can record.)
      let others = try objects == 1
        ? masks * 0
        : Tensor.cat(try (0..<objects).map { i in
            try Tensor.cat(try (0..<objects).filter { $0 != i }.map { try masks.narrow(dim: 1, start: $0, length: 1) }, dim: 1)
              .sum(dim: 1, keepDim: true)
          }, dim: 1)
      maskChannels = try Tensor.cat([maskChannels, others.unsqueeze(2)], dim: 2)
    }
    let input = try Tensor.cat([frame.distributed(to: objects), maskChannels], dim: 2)
    var g = try input.perGroup { x in
      let stem = try bn1.forward(conv1.forward(x)).maxPool2d(kernel: 3, stride: 2, padding: 1).relu()
      return try stages.reduce(stem) { try $1.forward($0) }
    }
    g = try fuser.forward(image: imageFeature, groups: g)
    guard deepUpdate, let hiddenReinforce, let hidden else { return (g, hidden) }
    return (g, try hiddenReinforce.forward(g, hidden: hidden))
  }
}

/// XMem's key projection (`key_proj`): 3×3 convolutions from the stride-16 feature to
/// the key (`key_proj`), the shrinkage d² + 1 (`d_proj`) and the selection sigmoid(e) (`e_proj`).
public final class XMemKeyProjection: Module {
  let key: Conv2d
  let shrinkage: Conv2d
  let selection: Conv2d

  init(inChannels: Int, keyChannels: Int) throws {
    key = try Conv2d(inChannels, keyChannels, kernelSize: 3, padding: 1)
    shrinkage = try Conv2d(inChannels, 1, kernelSize: 3, padding: 1)
    selection = try Conv2d(inChannels, keyChannels, kernelSize: 3, padding: 1)
    super.init()
    registerModule("key_proj", key)
    registerModule("d_proj", shrinkage)
    registerModule("e_proj", selection)
  }

  func forward(_ f16: Tensor, needShrinkage: Bool, needSelection: Bool) throws -> (key: Tensor, shrinkage: Tensor?, selection: Tensor?) {
    let s = needShrinkage ? try shrinkage.forward(f16).square() + 1 : nil
    let e = needSelection ? try selection.forward(f16).sigmoid() : nil
    return (try key.forward(f16), s, e)
  }
}
