import Foundation

/// Weight initialisers, as torch.nn.init. Each fills its tensor in place without
/// recording gradients and draws from the same generator calls as torch, so after the
/// same `Torch.manualSeed` the values are torch's.
public enum Init {
  /// Which fan keeps the variance: of the activations (`fanIn`) or of the gradients (`fanOut`).
  public enum FanMode: Sendable { case fanIn, fanOut }

  /// Activation functions known to `calculateGain`, named as torch's strings.
  public enum Nonlinearity: Sendable { case linear, conv, sigmoid, tanh, relu, leakyReLU, selu }

  /// The recommended gain for `nonlinearity`; `param` is leaky ReLU's negative slope (default 0.01).
  public static func calculateGain(_ nonlinearity: Nonlinearity, param: Double? = nil) -> Double {
    switch nonlinearity {
    case .linear, .conv, .sigmoid: return 1
    case .tanh: return 5.0 / 3
    case .relu: return 2.0.squareRoot()
    case .leakyReLU: return (2.0 / (1 + pow(param ?? 0.01, 2))).squareRoot()
    case .selu: return 3.0 / 4
    }
  }

  /// Fan in and fan out of a weight: dimension 1 and dimension 0, times the kernel size.
  public static func fans(_ tensor: Tensor) throws -> (fanIn: Int, fanOut: Int) {
    let shape = tensor.shape
    guard shape.count >= 2 else {
      throw NNError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    }
    let receptiveField = shape.dropFirst(2).reduce(1, *)
    return (shape[1] * receptiveField, shape[0] * receptiveField)
  }

  private static func fan(_ tensor: Tensor, _ mode: FanMode) throws -> Int {
    let (fanIn, fanOut) = try fans(tensor)
    return mode == .fanIn ? fanIn : fanOut
  }

  public static func uniform_(_ tensor: Tensor, from: Double = 0, to: Double = 1) throws {
    try Torch.withNoGrad { try tensor.uniform_(from: from, to: to) }
  }

  public static func normal_(_ tensor: Tensor, mean: Double = 0, std: Double = 1) throws {
    try Torch.withNoGrad { try tensor.normal_(mean: mean, std: std) }
  }

  public static func constant_(_ tensor: Tensor, _ value: Double) throws {
    try Torch.withNoGrad { try tensor.fill_(value) }
  }

  public static func zeros_(_ tensor: Tensor) throws { try constant_(tensor, 0) }

  public static func ones_(_ tensor: Tensor) throws { try constant_(tensor, 1) }

  /// He initialisation from U(-b, b), b = gain·√(3 / fan); `a` is leaky ReLU's slope.
  public static func kaimingUniform_(
    _ tensor: Tensor, a: Double = 0, mode: FanMode = .fanIn, nonlinearity: Nonlinearity = .leakyReLU
  ) throws {
    guard tensor.count > 0 else { return }
    let std = calculateGain(nonlinearity, param: a) / Double(try fan(tensor, mode)).squareRoot()
    let bound = 3.0.squareRoot() * std
    try uniform_(tensor, from: -bound, to: bound)
  }

  /// He initialisation from N(0, gain² / fan).
  public static func kaimingNormal_(
    _ tensor: Tensor, a: Double = 0, mode: FanMode = .fanIn, nonlinearity: Nonlinearity = .leakyReLU
  ) throws {
    guard tensor.count > 0 else { return }
    let std = calculateGain(nonlinearity, param: a) / Double(try fan(tensor, mode)).squareRoot()
    try normal_(tensor, mean: 0, std: std)
  }

  /// Glorot initialisation from U(-b, b), b = gain·√(6 / (fan_in + fan_out)).
  public static func xavierUniform_(_ tensor: Tensor, gain: Double = 1) throws {
    let (fanIn, fanOut) = try fans(tensor)
    let std = gain * (2.0 / Double(fanIn + fanOut)).squareRoot()
    let bound = 3.0.squareRoot() * std
    try uniform_(tensor, from: -bound, to: bound)
  }

  /// Glorot initialisation from N(0, gain² · 2 / (fan_in + fan_out)).
  public static func xavierNormal_(_ tensor: Tensor, gain: Double = 1) throws {
    let (fanIn, fanOut) = try fans(tensor)
    try normal_(tensor, mean: 0, std: gain * (2.0 / Double(fanIn + fanOut)).squareRoot())
  }

  /// The size×size kernel with which a stride-(size+1)/2 transposed convolution does
  /// bilinear upsampling (FCN's `upsample_filt`).
  public static func bilinearUpsamplingKernel(size: Int, dtype: DType = .float32) throws -> Tensor {
    let factor = Double((size + 1) / 2)
    let center = size % 2 == 1 ? factor - 1 : factor - 0.5
    let profile = (0..<size).map { 1 - abs(Double($0) - center) / factor }
    let values = profile.flatMap { row in profile.map { row * $0 } }
    return try Tensor(values, shape: [size, size]).to(dtype)
  }

  /// Sets a transposed-convolution weight (in, out, k, k) to bilinear upsampling: the
  /// kernel on each channel pair (i, i), zeros elsewhere, as FCN initialises its deconvolutions.
  public static func bilinearUpsampling_(_ weight: Tensor) throws {
    let shape = weight.shape
    guard shape.count == 4, shape[2] == shape[3] else {
      throw NNError("bilinear upsampling needs a square (in, out, k, k) weight, got shape \(shape)")
    }
    let kernel = try bilinearUpsamplingKernel(size: shape[2], dtype: weight.dtype)
    try Torch.withNoGrad {
      try weight.zero_()
      for channel in 0..<min(shape[0], shape[1]) {
        try weight.select(dim: 0, index: channel).select(dim: 0, index: channel).copy_(kernel)
      }
    }
  }
}
