import SegKitNN

/// LinkNet's decoder (Chaurasia & Culurciello 2017) over any encoder: from the last
/// feature, each block upsamples to the next finer feature and adds it (the
/// encoder's output is "linked" in by addition, keeping the decoder light); then
/// the paper's final block reaches the input's resolution: a 3×3 transposed conv
/// ×2 (`final_deconv1`, BN, ReLU), a 3×3 conv (`final_conv2`, BN, ReLU) and a 2×2
/// transposed conv ×2 to the classes (`final_deconv3`, the model's upsampling class head).
///
/// Inputs are padded to a multiple of 32 (`requiredDivisor`) so every transposed
/// convolution doubles exactly.
public final class LinkNetDecoder: Module, Decoder {
  let blocks: [LinkNetBlock]
  let finalDeconv1: ConvTranspose2d
  let finalBN1: BatchNorm2d
  let finalConv2: Conv2d
  let finalBN2: BatchNorm2d
  public let outputChannels: Int

  public init(
    featureChannels: [Int], featureStrides: [Int] = [4, 8, 16, 32], finalChannels: Int = 32
  ) throws {
    blocks = try [2, 1, 0].map { level in
      try LinkNetBlock(
        featureChannels[level + 1], featureChannels[level],
        stride: featureStrides[level + 1] / featureStrides[level])
    }
    finalDeconv1 = try ConvTranspose2d(
      featureChannels[0], finalChannels, kernelSize: 3, stride: 2, padding: 1, bias: false)
    finalBN1 = try BatchNorm2d(finalChannels)
    finalConv2 = try Conv2d(finalChannels, finalChannels, kernelSize: 3, padding: 1, bias: false)
    finalBN2 = try BatchNorm2d(finalChannels)
    outputChannels = finalChannels
    super.init()
    registerModule("blocks", ModuleList(blocks))
    registerModule("final_deconv1", finalDeconv1)
    registerModule("final_bn1", finalBN1)
    registerModule("final_conv2", finalConv2)
    registerModule("final_bn2", finalBN2)
  }

  public var requiredDivisor: Int { 32 }
  public var classHeadKey: String? { "final_deconv3" }

  public func forward(features: [Tensor], inputSize: Size2) throws -> Tensor {
    var x = features[3]
    for (block, level) in zip(blocks, [2, 1, 0]) {
      let skip = features[level]
      x = try block.forward(x, outputSize: skip.spatialSize) + skip
    }
    let size = x.spatialSize
    x = try finalBN1(finalDeconv1.forward(x, outputSize: Size2(2 * size.height, 2 * size.width))).relu()
    // At stride 2: the class head's transposed convolution reaches the input's size.
    return try finalBN2(finalConv2(x)).relu()
  }
}

/// LinkNet's decoder block from m to n channels: 1×1 conv to m/4, a 3×3 transposed
/// conv (stride 2, or 1 where a dilated encoder kept the resolution), 1×1 conv to
/// n, each followed by BN and ReLU (keys conv1/bn1, deconv2/bn2, conv3/bn3).
final class LinkNetBlock: Module, ConvBatchNormPairs {
  let conv1: Conv2d
  let bn1: BatchNorm2d
  let deconv2: ConvTranspose2d
  let bn2: BatchNorm2d
  let conv3: Conv2d
  let bn3: BatchNorm2d

  init(_ inChannels: Int, _ outChannels: Int, stride: Int) throws {
    let inner = inChannels / 4
    conv1 = try Conv2d(inChannels, inner, kernelSize: 1, bias: false)
    bn1 = try BatchNorm2d(inner)
    deconv2 = try ConvTranspose2d(inner, inner, kernelSize: 3, stride: Size2(stride), padding: 1, bias: false)
    bn2 = try BatchNorm2d(inner)
    conv3 = try Conv2d(inner, outChannels, kernelSize: 1, bias: false)
    bn3 = try BatchNorm2d(outChannels)
    super.init()
    registerModule("conv1", conv1)
    registerModule("bn1", bn1)
    registerModule("deconv2", deconv2)
    registerModule("bn2", bn2)
    registerModule("conv3", conv3)
    registerModule("bn3", bn3)
  }

  var convBatchNormPairs: [(Conv2d, BatchNorm2d)] { [(conv1, bn1), (conv3, bn3)] }

  /// Upsamples to `outputSize`: exact when the stride divides it, which the
  /// model's padding to 32 ensures; other sizes are cropped or resampled.
  func forward(_ x: Tensor, outputSize: Size2) throws -> Tensor {
    let h = try bn1(conv1(x)).relu()
    let size = h.spatialSize
    let stride = deconv2.stride.height
    let up = try deconv2.forward(h, outputSize: Size2(stride * size.height, stride * size.width)).fitted(to: outputSize)
    return try bn3(conv3(bn2(up).relu())).relu()
  }
}
