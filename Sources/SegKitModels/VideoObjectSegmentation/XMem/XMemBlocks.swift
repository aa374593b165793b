import SegKitNN

// XMem's building blocks. Features that depend on a mask carry one map per object,
// [batch, objects, channels, H, W] ("groups"); the blocks apply the same weights to
// every object, so they are equivariant to the objects' order.

extension Tensor {
  /// [B, O, C, H, W] → [B·O, C, H, W], the layout a 2-D layer takes.
  func flattenedGroups() throws -> Tensor { try flatten(startDim: 0, endDim: 1) }

  /// [B·O, C, H, W] → [B, O, C, H, W].
  func unflattenedGroups(batch: Int, objects: Int) throws -> Tensor {
    try view([batch, objects] + shape.dropFirst())
  }

  /// Applies a 2-D operation to every object's map.
  func perGroup(_ body: (Tensor) throws -> Tensor) throws -> Tensor {
    let s = shape
    return try body(flattenedGroups()).unflattenedGroups(batch: s[0], objects: s[1])
  }

  /// An image feature [B, C, H, W] repeated for each of `objects`: [B, O, C, H, W].
  func distributed(to objects: Int) throws -> Tensor {
    let s = shape
    return try unsqueeze(1).expand([s[0], objects] + s.dropFirst())
  }
}

/// XMem's `GroupResBlock`: two 3×3 convolutions after ReLUs, with a 3×3 projection
/// (not ResNet's 1×1) when the channel count changes.
final class GroupResidualBlock: Module {
  let conv1: Conv2d
  let conv2: Conv2d
  let downsample: Conv2d?

  init(_ inChannels: Int, _ outChannels: Int) throws {
    conv1 = try Conv2d(inChannels, outChannels, kernelSize: 3, padding: 1)
    conv2 = try Conv2d(outChannels, outChannels, kernelSize: 3, padding: 1)
    downsample = inChannels == outChannels ? nil : try Conv2d(inChannels, outChannels, kernelSize: 3, padding: 1)
    super.init()
    if let downsample { registerModule("downsample", downsample) }
    registerModule("conv1", conv1)
    registerModule("conv2", conv2)
  }

  func forward(_ g: Tensor) throws -> Tensor {
    try g.perGroup { g in
      let out = try conv2.forward(conv1.forward(g.relu()).relu())
      return try out + (downsample?.forward(g) ?? g)
    }
  }

  /// The block over each object's features after the image feature x [B, C, H, W],
  /// concatenated on channels, as XMem computes it. With several objects (in
  /// evaluation), the image's share of the first convolution and of the projection is
  /// computed once and added to each object's share: both are linear and the ReLU acts
  /// per channel, so the sums are XMem's, with the image's part not repeated per object.
  func forward(image x: Tensor, groups g: Tensor) throws -> Tensor {
    let objects = g.shape[1], imageChannels = x.shape[1]
    guard objects > 1, !isTraining, let downsample else {
      return try forward(Tensor.cat([x.distributed(to: objects), g], dim: 2))
    }
    func split(_ conv: Conv2d) throws -> (image: Tensor, groups: Tensor) {
      let weight = conv.weight  // no batch norm follows these convolutions: nothing is folded into them
      return (try weight.narrow(dim: 1, start: 0, length: imageChannels),
              try weight.narrow(dim: 1, start: imageChannels, length: weight.shape[1] - imageChannels))
    }
    let (first, projection) = (try split(conv1), try split(downsample))
    let imageFirst = try x.relu().conv2d(weight: first.image, bias: nil, padding: 1).unsqueeze(1)
    let imageProjection = try x.conv2d(weight: projection.image, bias: nil, padding: 1).unsqueeze(1)
    let hidden = try g.perGroup { try $0.relu().conv2d(weight: first.groups, bias: conv1.bias, padding: 1) } + imageFirst
    let shortcut = try g.perGroup { try $0.conv2d(weight: projection.groups, bias: downsample.bias, padding: 1) } + imageProjection
    return try hidden.perGroup { try conv2.forward($0.relu()) } + shortcut
  }
}

/// CBAM (Woo et al. 2018) as XMem uses it: a channel gate (a shared two-layer MLP over
/// the average- and max-pooled channels, `ChannelGate.mlp.1` and `.3`) then a spatial
/// gate (a 7×7 convolution over the channels' max and mean, `SpatialGate.spatial.conv`).
final class ConvolutionalBlockAttention: Module {
  let mlp1: Linear
  let mlp2: Linear
  let spatial: Conv2d

  init(channels: Int, reduction: Int = 16) throws {
    mlp1 = try Linear(channels, channels / reduction)
    mlp2 = try Linear(channels / reduction, channels)
    spatial = try Conv2d(2, 1, kernelSize: 7, padding: 3)
    super.init()
    let channelGate = Module(), mlp = Module(), spatialGate = Module(), basicConv = Module()
    mlp.registerModule("1", mlp1)
    mlp.registerModule("3", mlp2)
    channelGate.registerModule("mlp", mlp)
    basicConv.registerModule("conv", spatial)
    spatialGate.registerModule("spatial", basicConv)
    registerModule("ChannelGate", channelGate)
    registerModule("SpatialGate", spatialGate)
  }

  /// x: [N, C, H, W].
  func forward(_ x: Tensor) throws -> Tensor {
    let n = x.shape[0], c = x.shape[1]
    func mlp(_ pooled: Tensor) throws -> Tensor { try mlp2.forward(mlp1.forward(pooled.view([n, c])).relu()) }
    let channelWeights = try (mlp(x.mean(dims: [2, 3])) + mlp(x.max(dims: [2, 3]))).sigmoid().view([n, c, 1, 1])
    let gated = try x * channelWeights
    let pooled = try Tensor.cat([gated.max(dims: [1], keepDim: true), gated.mean(dims: [1], keepDim: true)], dim: 1)
    return try gated * spatial.forward(pooled).sigmoid()
  }
}

/// XMem's `FeatureFusionBlock`: the image feature is concatenated before each object's
/// features, then a residual block, CBAM added as a residual, and a second block.
final class FeatureFusionBlock: Module {
  let block1: GroupResidualBlock
  let attention: ConvolutionalBlockAttention
  let block2: GroupResidualBlock

  init(imageChannels: Int, groupChannels: Int, middleChannels: Int, outChannels: Int) throws {
    block1 = try GroupResidualBlock(imageChannels + groupChannels, middleChannels)
    attention = try ConvolutionalBlockAttention(channels: middleChannels)
    block2 = try GroupResidualBlock(middleChannels, outChannels)
    super.init()
    registerModule("block1", block1)
    registerModule("attention", attention)
    registerModule("block2", block2)
  }

  func forward(image x: Tensor, groups g: Tensor) throws -> Tensor {
    let fused = try block1.forward(image: x, groups: g)
    let attended = try fused.perGroup { try attention.forward($0) }
    return try block2.forward(fused + attended)
  }
}

/// XMem's gated update of the hidden (sensory) state, one 3×3 convolution
/// (`transform`) giving three gates. Its new value is computed before the forget gate
/// is applied, unlike a textbook GRU (XMem's author calls it an implementation error
/// left in place); checkpoints were trained with it, so it is kept.
final class GatedHiddenUpdate: Module {
  let hiddenChannels: Int
  let transform: Conv2d

  init(inputChannels: Int, hiddenChannels: Int) throws {
    self.hiddenChannels = hiddenChannels
    transform = try Conv2d(inputChannels + hiddenChannels, hiddenChannels * 3, kernelSize: 3, padding: 1)
    super.init()
    registerModule("transform", transform)
  }

  /// g: [B, O, C, H, W]; hidden: [B, O, C^h, H, W].
  func forward(_ g: Tensor, hidden: Tensor) throws -> Tensor {
    let values = try Tensor.cat([g, hidden], dim: 2).perGroup { try transform.forward($0) }
    let c = hiddenChannels
    let forget = try values.narrow(dim: 2, start: 0, length: c).sigmoid()
    let update = try values.narrow(dim: 2, start: c, length: c).sigmoid()
    let newValue = try values.narrow(dim: 2, start: 2 * c, length: c).tanh()
    return try forget * hidden * (1 - update) + update * newValue
  }
}

/// The decoder's hidden-state update (`HiddenUpdater`): the decoder's features at
/// strides 16, 8 and 4 (the last with the logits) area-averaged to stride 16, each
/// through a 1×1 convolution, summed, then the gated update.
final class DecoderHiddenUpdate: Module {
  let g16Conv: Conv2d
  let g8Conv: Conv2d
  let g4Conv: Conv2d
  let gate: GatedHiddenUpdate

  init(channels: (g16: Int, g8: Int, g4: Int), middleChannels: Int, hiddenChannels: Int) throws {
    g16Conv = try Conv2d(channels.g16, middleChannels, kernelSize: 1)
    g8Conv = try Conv2d(channels.g8, middleChannels, kernelSize: 1)
    g4Conv = try Conv2d(channels.g4, middleChannels, kernelSize: 1)
    gate = try GatedHiddenUpdate(inputChannels: middleChannels, hiddenChannels: hiddenChannels)
    super.init()
    registerModule("g16_conv", g16Conv)
    registerModule("g8_conv", g8Conv)
    registerModule("g4_conv", g4Conv)
    registerModule("transform", gate.transform)
  }

  func forward(g16: Tensor, g8: Tensor, g4: Tensor, hidden: Tensor) throws -> Tensor {
    let g = try g16.perGroup { try g16Conv.forward($0) }
      + g8.perGroup { try g8Conv.forward($0.areaDownsampled(by: 2)) }
      + g4.perGroup { try g4Conv.forward($0.areaDownsampled(by: 4)) }
    return try gate.forward(g, hidden: hidden)
  }
}

extension Tensor {
  /// F.interpolate(scale_factor=1/factor, mode='area'): the mean of each factor×factor cell.
  func areaDownsampled(by factor: Int) throws -> Tensor {
    try adaptiveAvgPool2d(Size2(shape[2] / factor, shape[3] / factor))
  }
}

/// XMem's `UpsampleBlock`: the coarser objects' features upsampled ×2 (bilinear) plus a
/// 3×3 convolution of the image's skip feature, then a residual block.
final class UpsampleBlock: Module {
  let skipConv: Conv2d
  let outConv: GroupResidualBlock

  init(skipChannels: Int, upChannels: Int, outChannels: Int) throws {
    skipConv = try Conv2d(skipChannels, upChannels, kernelSize: 3, padding: 1)
    outConv = try GroupResidualBlock(upChannels, outChannels)
    super.init()
    registerModule("skip_conv", skipConv)
    registerModule("out_conv", outConv)
  }

  func forward(skip: Tensor, up g: Tensor) throws -> Tensor {
    let upsampled = try g.perGroup { try $0.interpolate(scaleFactor: 2, mode: .bilinear, alignCorners: false) }
    return try outConv.forward(skipConv.forward(skip).distributed(to: g.shape[1]) + upsampled)
  }
}
