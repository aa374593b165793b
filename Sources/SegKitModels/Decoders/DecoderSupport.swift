import SegKitNN

extension Tensor {
  /// Height and width of an (N, C, H, W) tensor.
  var spatialSize: Size2 {
    let shape = self.shape
    return Size2(shape[2], shape[3])
  }

  /// The top-left `size` window.
  func cropped(to size: Size2) throws -> Tensor {
    try narrow(dim: 2, start: 0, length: size.height).narrow(dim: 3, start: 0, length: size.width)
  }

  /// Bilinear resampling to `size`, skipped when the size already matches (except
  /// while an export records it: at other sizes it may not match).
  func resized(to size: Size2, mode: Interpolation = .bilinear) throws -> Tensor {
    spatialSize == size && !OperationTrace.isRecording ? self : try interpolate(size: size, mode: mode)
  }

  /// Aligns an upsampled map with a finer one of `size`. A transposed convolution
  /// doubling a map produced from an odd size (strided convs round up) overshoots by
  /// a row or column: that surplus is cropped at the bottom/right, because with
  /// "same" padding pixel i of the coarse map sits over pixel stride·i of the fine
  /// one, so both grids start together (FCN's crop; it needed offsets only because
  /// of its 100-pixel input padding). An encoder whose pooling rounds down leaves
  /// the upsampled map short instead; that one is resampled. While an export records
  /// it, both steps are taken at every size, so that a graph with open sizes holds
  /// them (the writer leaves out a crop or resize that changes nothing).
  func fitted(to size: Size2) throws -> Tensor {
    let have = spatialSize, recording = OperationTrace.isRecording
    let cropped = recording || have.height > size.height || have.width > size.width
      ? try narrow(dim: 2, start: 0, length: Swift.min(have.height, size.height))
        .narrow(dim: 3, start: 0, length: Swift.min(have.width, size.width))
      : self
    return cropped.spatialSize == size && !recording ? cropped : try cropped.interpolate(size: size, mode: Interpolation.bilinear)
  }
}

/// k×k convolution (no bias), batch norm, ReLU; with `separable`, the convolution
/// is depthwise + pointwise (DeepLab's separable convolutions).
func convBNReLU(_ inChannels: Int, _ outChannels: Int, kernelSize: Int = 3, dilation: Int = 1, separable: Bool = false)
  throws -> [any Layer]
{
  let conv: any Layer = separable && kernelSize > 1
    ? try DepthwiseSeparableConv2d(
      inChannels, outChannels, kernelSize: Size2(kernelSize), dilation: Size2(dilation), bias: false)
    : try Conv2d(
      inChannels, outChannels, kernelSize: Size2(kernelSize), padding: Size2(dilation * (kernelSize - 1) / 2),
      dilation: Size2(dilation), bias: false)
  return [conv, try BatchNorm2d(outChannels), ReLU()]
}

/// Two 3×3 conv-BN-ReLU, the block of U-Net's and SegNet's decoder stages (keys .0,
/// .1 and .3, .4 as an nn.Sequential).
func doubleConv(_ inChannels: Int, _ outChannels: Int) throws -> Sequential {
  Sequential(try convBNReLU(inChannels, outChannels) + convBNReLU(outChannels, outChannels))
}

/// The stages of an upsampling decoder (U-Net, SegNet): stage i takes the previous
/// stage's channels plus `skips[i]` concatenated skip channels and applies
/// `doubleConv` to `widths[i]`. Returns the stages and the last stage's width.
func doubleConvStages(input: Int, skips: [Int], widths: [Int]) throws -> (stages: [Sequential], channels: Int) {
  var channels = input
  var stages: [Sequential] = []
  for (width, skip) in zip(widths, skips) {
    stages.append(try doubleConv(channels + skip, width))
    channels = width
  }
  return (stages, channels)
}

/// A plain module holding numbered children, as an nn.ModuleList.
final class ModuleList: Module {
  init(_ modules: [Module]) {
    super.init()
    for (index, module) in modules.enumerated() { registerModule(String(index), module) }
  }
}
