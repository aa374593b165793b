/// Channel attention as torchvision's SqueezeExcitation: x · scale(fc2(act(fc1(avgpool(x))))),
/// children avgpool, fc1, fc2, activation, scale_activation (1×1 convolutions with bias).
public final class SqueezeExcitation: Module, Layer {
  public let avgpool: AdaptiveAvgPool2d
  public let fc1: Conv2d
  public let fc2: Conv2d
  public let activation: any Layer
  public let scaleActivation: any Layer

  /// MobileNetV3 passes `Hardsigmoid()` as `scaleActivation`.
  public init(
    inputChannels: Int, squeezeChannels: Int, activation: any Layer = ReLU(), scaleActivation: any Layer = Sigmoid()
  ) throws {
    avgpool = AdaptiveAvgPool2d(1)
    fc1 = try Conv2d(inputChannels, squeezeChannels, kernelSize: 1)
    fc2 = try Conv2d(squeezeChannels, inputChannels, kernelSize: 1)
    self.activation = activation
    self.scaleActivation = scaleActivation
    super.init()
    registerModule("avgpool", avgpool)
    registerModule("fc1", fc1)
    registerModule("fc2", fc2)
    registerModule("activation", activation)
    registerModule("scale_activation", scaleActivation)
  }

  public func forward(_ x: Tensor) throws -> Tensor {
    let scale = try scaleActivation(fc2(activation(fc1(avgpool(x)))))
    return try x * scale
  }
}
