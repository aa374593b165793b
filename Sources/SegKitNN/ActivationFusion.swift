/// An activation layer a convolution in front of it can apply itself
/// (`fuseActivations`); while fused and in evaluation mode it passes its input on.
public protocol FusableActivation: AnyObject {
  var convolutionActivation: ConvolutionActivation { get }
  var fusedIntoConvolution: Bool { get set }
}

/// Modules that wire convolutions and activations by hand fuse their own pairs.
public protocol ActivationFusing {
  /// Fuses its own pairs; returns how many activations it fused.
  func fuseOwnActivations() -> Int
}

extension Sequential: ActivationFusing {
  /// A convolution followed by an activation, or by a folded batch norm and then an
  /// activation.
  public func fuseOwnActivations() -> Int {
    var count = 0
    for (index, layer) in layers.enumerated() {
      guard let conv = layer as? Conv2d, conv.fusedActivation == nil else { continue }
      var next = index + 1
      if next < layers.count, let norm = layers[next] as? BatchNorm2d {
        guard norm.isFolded else { continue }
        next += 1
      }
      guard next < layers.count, let activation = layers[next] as? FusableActivation else { continue }
      conv.fusedActivation = activation.convolutionActivation
      activation.fusedIntoConvolution = true
      count += 1
    }
    return count
  }
}

extension Module {
  /// For inference on the CPU, after `foldBatchNorm`: each convolution applies the
  /// activation that follows it inside its own kernel (oneDNN's fused convolutions),
  /// saving a pass over every activated feature map. Evaluation mode only; returning
  /// to training, or loading weights, undoes it. Returns how many were fused.
  @discardableResult
  public func fuseActivations() throws -> Int {
    guard !isTraining else { throw NNError("fuseActivations: call eval() first") }
    return modules().reduce(0) { $0 + (($1 as? ActivationFusing)?.fuseOwnActivations() ?? 0) }
  }

  /// For inference: each transposed convolution whose weight maps every channel only
  /// onto itself (the bilinear upsampling of FCN and OSVOS) runs as a depthwise one,
  /// C times fewer multiplications for the same sums. Evaluation mode only; returning
  /// to training, or loading weights, undoes it. Returns how many were rewritten.
  @discardableResult
  public func useDepthwiseDiagonals() throws -> Int {
    guard !isTraining else { throw NNError("useDepthwiseDiagonals: call eval() first") }
    var count = 0
    for case let deconvolution as ConvTranspose2d in modules() {
      deconvolution.depthwiseDiagonal = try deconvolution.diagonalOnly()
      if deconvolution.depthwiseDiagonal != nil { count += 1 }
    }
    return count
  }

  /// For inference in a reduced precision (bfloat16): every parameter, buffer and
  /// folded weight in `dtype`, except where oneDNN has no fast bfloat16 kernel, which
  /// stay float32 (converting their input and output): transposed convolutions
  /// (OSVOS's stride-16 upsampling: 105 ms in bfloat16 against 2 ms in float32) and
  /// convolutions dilated by 12 or more (DeepLab's ASPP at rates 24 and 36 on 65×65:
  /// 320 and 370 ms against 145 and 89 ms; measured slower from rate 12 at 33×33 and
  /// from 18 at 65×65, faster up to rate 8).
  public func convertForInference(to dtype: DType) throws {
    try to(dtype: dtype)
    guard dtype != .float32 else { return }
    for module in modules() {
      if let deconvolution = module as? ConvTranspose2d { try deconvolution.to(dtype: .float32) }
      if let conv = module as? Conv2d, max(conv.dilation.height, conv.dilation.width) >= 12 { try conv.to(dtype: .float32) }
    }
  }

  /// Forgets every fusion, depthwise rewrite, quantisation and kernel choice: each layer runs as registered again.
  func discardActivationFusion() {
    for module in modules() {
      (module as? Conv2d)?.fusedActivation = nil
      (module as? FusableActivation)?.fusedIntoConvolution = false
      (module as? ConvTranspose2d)?.depthwiseDiagonal = nil
      (module as? Conv2d)?.int8 = nil
      (module as? Conv2d)?.kernelChoice = nil
    }
  }
}
