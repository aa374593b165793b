import SegKitNN

// Pieces shared by the MobileNetV2 and MobileNetV3 encoders.

/// torchvision's Conv2dNormActivation: a k×k convolution (no bias, as a batch norm
/// follows) with padding (k−1)/2·dilation, the batch norm and an optional activation,
/// as children "0", "1", "2".
func convNormActivation(
  _ inChannels: Int, _ outChannels: Int, kernelSize: Int, stride: Int = 1, dilation: Int = 1, groups: Int = 1,
  norm: (Int) throws -> BatchNorm2d, activation: (any Layer)?
) throws -> Sequential {
  let conv = try Conv2d(
    inChannels, outChannels, kernelSize: Size2(kernelSize), stride: Size2(stride),
    padding: Size2((kernelSize - 1) / 2 * dilation), dilation: Size2(dilation), groups: groups, bias: false)
  return Sequential([conv, try norm(outChannels)] + (activation.map { [$0] } ?? []))
}

/// An inverted residual block: its layers under one child (`conv` in MobileNetV2,
/// `block` in MobileNetV3, as torchvision names them), plus the input when the block
/// keeps the shape.
final class InvertedResidual: Module, Layer {
  let body: Sequential
  let residual: Bool

  init(_ body: Sequential, name: String, residual: Bool) {
    self.body = body
    self.residual = residual
    super.init()
    registerModule(name, body)
  }

  func forward(_ x: Tensor) throws -> Tensor {
    let y = try body.forward(x)
    return residual ? try y + x : y
  }
}

/// How a network whose blocks have nominal `strides` reaches `outputStride`: once the
/// running stride equals the output stride, each stride-2 block gets stride 1 and the
/// dilation doubles. With `firstBlockKeepsDilation` the block where the dilation
/// doubles still uses the previous one (ResNet, DeepLab's MobileNetV2); without, it
/// uses the new one (torchvision's dilated MobileNetV3). Returns (stride, dilation) per block.
func dilatedSchedule(strides: [Int], outputStride: Int, firstBlockKeepsDilation: Bool, network: String) throws
  -> [(stride: Int, dilation: Int)]
{
  guard [8, 16, 32].contains(outputStride) else {
    throw ModelError("\(network): output stride must be 8, 16 or 32, got \(outputStride)")
  }
  var current = 1
  var dilation = 1
  return strides.map { stride in
    guard stride > 1 else { return (1, dilation) }
    guard current >= outputStride else {
      current *= stride
      return (stride, dilation)
    }
    let previous = dilation
    dilation *= stride
    return (1, firstBlockKeepsDilation ? previous : dilation)
  }
}

/// Checks the block indices an encoder returns as its features: four, one at each of
/// the nominal strides 4, 8, 16 and 32. With none given, the last block at each stride.
func featureBlockIndices(_ requested: [Int]?, strides: [Int], network: String) throws -> [Int] {
  var running = 1
  let reached = strides.map { stride in
    running *= stride
    return running
  }
  let wanted = [4, 8, 16, 32]
  guard let requested else { return wanted.map { stride in reached.lastIndex(of: stride)! } }
  guard requested.count == 4,
    zip(requested, wanted).allSatisfy({ reached.indices.contains($0) && reached[$0] == $1 })
  else {
    throw ModelError(
      "\(network): feature indices \(requested) must name one block at each of the strides 4, 8, 16, 32 "
        + "(blocks by stride: \(wanted.map { s in "\(s): \(reached.firstIndex(of: s)!)–\(reached.lastIndex(of: s)!)" }))")
  }
  return requested
}

/// torchvision's MobileNets: a flat list of blocks registered as "0", "1", … (the
/// classification model's `features.N`), with the features tapped at chosen blocks.
public protocol BlockListEncoder: Encoder {
  var blocks: [any Layer] { get }
  /// The blocks whose outputs are the features, one at each stride 4, 8, 16, 32.
  var featureIndices: [Int] { get }
}

extension BlockListEncoder {
  public var featureStrides: [Int] { cappedFeatureStrides(outputStride: outputStride) }

  /// Runs the blocks up to the last tapped one and returns the tapped outputs.
  public func features(_ x: Tensor) throws -> [Tensor] {
    var h = x
    var features: [Tensor] = []
    for (index, block) in blocks.enumerated().prefix(featureIndices.last! + 1) {
      h = try block.forward(h)
      if featureIndices.contains(index) { features.append(h) }
    }
    return features
  }

  public var inputConvolutionKey: String { "0.0.weight" }

  /// `features.N...` → `N...`; the classifier is dropped.
  public func encoderKey(forClassificationKey key: String) -> String? {
    key.hasPrefix("features.") ? String(key.dropFirst("features.".count)) : nil
  }
}
