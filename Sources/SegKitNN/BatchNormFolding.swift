/// Modules that know which convolution feeds which batch norm directly, so that
/// the pair can be folded into one convolution for inference. `Sequential`
/// finds adjacent pairs itself; a module that wires layers by hand lists its own.
public protocol ConvBatchNormPairs {
  var convBatchNormPairs: [(Conv2d, BatchNorm2d)] { get }
}

extension Sequential: ConvBatchNormPairs {
  public var convBatchNormPairs: [(Conv2d, BatchNorm2d)] {
    zip(layers, layers.dropFirst()).compactMap { first, second in
      guard let conv = first as? Conv2d, let norm = second as? BatchNorm2d else { return nil }
      return (conv, norm)
    }
  }
}

extension Module {
  /// Folds every batch norm that directly follows a convolution into that
  /// convolution, for evaluation mode: conv(x)·γ/√(σ²+ε) + β − μ·γ/√(σ²+ε) becomes
  /// one convolution with scaled weights and a shifted bias. The registered
  /// parameters are untouched (the state dict is unchanged); the fold is dropped
  /// when the model returns to training or loads new weights. Returns how many
  /// pairs were folded.
  @discardableResult
  public func foldBatchNorm() throws -> Int {
    guard !isTraining else { throw NNError("foldBatchNorm: call eval() first (folding uses the running statistics)") }
    var count = 0
    try Torch.withNoGrad {
      for module in modules() {
        guard let owner = module as? ConvBatchNormPairs else { continue }
        for (conv, norm) in owner.convBatchNormPairs where !norm.isFolded {
          guard let mean = norm.runningMean, let variance = norm.runningVar else { continue }
          let scale = try (variance + norm.eps).rsqrt() * (norm.weight?.detach() ?? Tensor.ones(mean.shape, dtype: mean.dtype))
          let weight = try conv.weight.detach() * scale.reshape([-1, 1, 1, 1])
          let shift = try (conv.bias?.detach() ?? Tensor.zeros(mean.shape, dtype: mean.dtype)) - mean
          var bias = try shift * scale
          if let beta = norm.bias { bias = try bias + beta.detach() }
          conv.folded = (try weight.contiguous(conv.weight.isLaidOut(.channelsLast) ? .channelsLast : .contiguous), bias)
          norm.isFolded = true
          count += 1
        }
      }
    }
    return count
  }

  /// The weights and biases folded convolutions (and depthwise-run transposed ones)
  /// use instead of their registered ones, under those parameters' names (an export names its constants by them).
  public func namedFoldedTensors() -> [(String, Tensor)] {
    namedModules().flatMap { path, module -> [(String, Tensor)] in
      let prefix = path.isEmpty ? "" : path + "."
      if let diagonal = (module as? ConvTranspose2d)?.depthwiseDiagonal { return [(prefix + "weight", diagonal)] }
      guard let folded = (module as? Conv2d)?.folded else { return [] }
      return [(prefix + "weight", folded.weight), (prefix + "bias", folded.bias)]
    }
  }

  /// Forgets every fold, so each layer uses its registered parameters again.
  func discardBatchNormFolding() {
    discardActivationFusion()  // a fused activation skips the batch norm between
    for module in modules() {
      (module as? Conv2d)?.folded = nil
      (module as? BatchNorm2d)?.isFolded = false
    }
  }
}
