import SegKitNN

/// DVSNet's decision network: from the flow network's deepest features (FlowNetS
/// conv6_1) for a region, the predicted confidence score of the warp path, in percent:
/// how many of the region's pixels the flow-warped key-frame segmentation labels as
/// the segmentation network would (`RegionConfidence`). A region is segmented anew
/// when the prediction falls below the target.
///
///     grid    the features resized bilinearly to a fixed grid (DVSNet: 4×8, the size
///             of conv6_1 for a 256×512 flow input; its TensorFlow variant: 4×5)
///     conv    3×3 to 96 channels, LeakyReLU 0.1
///     fc0…fc3 fully connected 1024, 1024, 10, 1, each with LeakyReLU 0.1 (the last
///             too, as DVSNet has it), dropout after the first three in training
///
/// The features are flattened channel-first (PyTorch's order; DVSNet's TensorFlow
/// weights would need their first fully connected layer permuted).
public final class DecisionNetwork: Module, Layer {
  public let featureChannels: Int
  public let grid: Size2
  let conv: Conv2d
  let layers: [Linear]
  let dropout: Dropout

  /// `initialScore` starts the last layer's bias at the training scores' mean: the
  /// scores sit near 100, and Adam moves a bias by about its learning rate a step, so
  /// from DVSNet's 0.1 the output needs tens of thousands of steps only to reach them.
  public init(featureChannels: Int = 384, grid: Size2 = Size2(4, 8), dropout: Double = 0.5,
              initialScore: Double = 0.1) throws {
    guard featureChannels > 0, grid.height > 0, grid.width > 0, (0..<1).contains(dropout) else {
      throw ModelError("DecisionNetwork: \(featureChannels) channels, grid \(grid) and dropout \(dropout) are not a network")
    }
    self.featureChannels = featureChannels
    self.grid = grid
    conv = try Conv2d(featureChannels, 96, kernelSize: 3, padding: 1)
    let widths = [96 * grid.height * grid.width, 1024, 1024, 10, 1]
    layers = try (0..<4).map { try Linear(widths[$0], widths[$0 + 1]) }
    self.dropout = Dropout(p: dropout)
    super.init()
    registerModule("conv", conv)
    for (index, layer) in layers.enumerated() { registerModule("fc\(index)", layer) }
    registerModule("dropout", self.dropout)
    // DVSNet: He-initialised weights, biases 0.1 on the fully connected layers.
    try Torch.withNoGrad {
      for layer in [conv.weight] + layers.map(\.weight) { try Init.kaimingNormal_(layer, a: 0.1) }
      try conv.bias?.zero_()
      for layer in layers { try layer.bias?.fill_(0.1) }
      try layers[3].bias?.fill_(initialScore)
    }
  }

  /// The shape of each parameter, by state-dict name, without building the network.
  public static func parameterShapes(featureChannels: Int, grid: Size2) -> [(String, [Int])] {
    let widths = [96 * grid.height * grid.width, 1024, 1024, 10, 1]
    var shapes: [(String, [Int])] = [("conv.weight", [96, featureChannels, 3, 3]), ("conv.bias", [96])]
    for layer in 0..<4 {
      shapes.append(("fc\(layer).weight", [widths[layer + 1], widths[layer]]))
      shapes.append(("fc\(layer).bias", [widths[layer + 1]]))
    }
    return shapes
  }

  /// How many numbers the network's parameters hold.
  public static func parameterCount(featureChannels: Int, grid: Size2) -> Int {
    var total = 0
    for (_, shape) in parameterShapes(featureChannels: featureChannels, grid: grid) {
      total += shape.reduce(1, *)
    }
    return total
  }

  /// The predicted confidence scores [N] (percent) from features [N, C, h, w].
  public func forward(_ features: Tensor) throws -> Tensor {
    guard features.rank == 4, features.shape[1] == featureChannels else {
      throw ModelError("DecisionNetwork takes [N, \(featureChannels), h, w] features; got \(features.shape)")
    }
    let resized = features.shape[2] == grid.height && features.shape[3] == grid.width
      ? features : try features.interpolate(size: grid)
    var x = try conv(resized).leakyReLU(slope: 0.1).flatten(startDim: 1)
    for (index, layer) in layers.enumerated() {
      x = try layer(x).leakyReLU(slope: 0.1)
      if index < 3 { x = try dropout(x) }
    }
    return try x.squeeze(dim: 1)
  }
}
