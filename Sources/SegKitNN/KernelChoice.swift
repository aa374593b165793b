import Foundation

/// A CPU kernel a convolution can run on.
public enum ConvolutionKernel: String, Sendable {
  /// The default: oneDNN's direct convolution, in float32 or, once quantised, in int8;
  /// its activation inside the kernel.
  case oneDNN
  /// NNPACK's Winograd F(6×6, 3×3) in float32: about a fifth of the multiplications, in
  /// the contiguous layout, rounded less exactly (outputs differ from a direct
  /// convolution's in about the fifth significant digit).
  case winograd
}

/// One convolution's measurement on one input shape (see `measureConvolutionKernels`).
public struct KernelMeasurement: Sendable {
  /// The convolution's path in the module tree.
  public var layer: String
  public var inputShape: [Int]
  public var outputChannels: Int
  /// Whether oneDNN's kernel was the int8 one (the convolution is quantised).
  public var int8: Bool
  /// The faster of two timed passes of each kernel, in seconds, layout copies included.
  public var oneDNNSeconds: Double
  public var winogradSeconds: Double
  public var chosen: ConvolutionKernel
}

/// A convolution's kernel per input shape, measured on the first input of each shape.
final class KernelChoice {
  /// Winograd is chosen when it takes less than this fraction of oneDNN's time.
  let winogradBelow: Double
  var measured: [[Int]: KernelMeasurement] = [:]
  /// The weight NNPACK reads, laid out contiguously once, and the weight it came from.
  var contiguousWeight: (source: Tensor, laidOut: Tensor)?

  init(winogradBelow: Double) { self.winogradBelow = winogradBelow }
}

extension Conv2d {
  /// Whether NNPACK's Winograd kernel computes this convolution: 3×3, stride 1, no
  /// dilation, ungrouped, float32 on the CPU. (NNPACK has no dilated or grouped kernels;
  /// its other sizes go through FFTs that measured slower than oneDNN.)
  var winogradApplies: Bool {
    Torch.hasNNPACK && kernelSize == Size2(3) && stride == Size2(1) && dilation == Size2(1) && groups == 1
      && weight.device == .cpu && weight.dtype == .float32
  }

  /// The kernel for `x`: oneDNN (`direct`, in float32 or int8) unless kernels are
  /// measured, and then the one measured faster on `x`'s shape, measured now when it is
  /// the first of its shape. Not while calibrating: int8 has not been chosen yet.
  func kernel(for x: Tensor, direct: () throws -> Tensor) throws -> ConvolutionKernel {
    guard let kernelChoice, calibration == nil, !isTraining, x.device == .cpu, x.dtype == .float32,
          !Torch.isGradEnabled, !OperationTrace.isRecording
    else { return .oneDNN }
    if let known = kernelChoice.measured[x.shape] { return known.chosen }
    let (w, b) = inferenceWeightAndBias
    guard w.dtype == .float32 else { return .oneDNN }
    func fastest(_ body: () throws -> Tensor) throws -> Double {
      var best = Double.infinity
      for _ in 0..<2 {
        let start = DispatchTime.now().uptimeNanoseconds
        _ = try body()
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
      }
      return best
    }
    // Each once first: oneDNN builds its primitive, NNPACK its transforms' buffers.
    _ = try direct()
    _ = try winograd(x, w, b)
    let directSeconds = try fastest(direct)
    let transformed = try fastest { try winograd(x, w, b) }
    let chosen: ConvolutionKernel = transformed < kernelChoice.winogradBelow * directSeconds ? .winograd : .oneDNN
    kernelChoice.measured[x.shape] = KernelMeasurement(
      layer: "", inputShape: x.shape, outputChannels: outChannels, int8: int8 != nil, oneDNNSeconds: directSeconds,
      winogradSeconds: transformed, chosen: chosen)
    return chosen
  }

  /// NNPACK's Winograd convolution of `x`, with the fused activation (evaluation mode).
  /// Its output is contiguous: a following Winograd layer reads it without a copy, a
  /// following oneDNN layer copies it to channels-last as it would any contiguous input.
  func winograd(_ x: Tensor, _ w: Tensor, _ b: Tensor?) throws -> Tensor {
    let laidOut: Tensor
    if let cached = kernelChoice?.contiguousWeight, cached.source === w {
      laidOut = cached.laidOut
    } else {
      laidOut = try w.contiguous()
      kernelChoice?.contiguousWeight = (w, laidOut)
    }
    return try x.nnpackConv2d(weight: laidOut, bias: b, padding: padding, then: isTraining ? nil : fusedActivation)
  }
}

extension Module {
  /// For CPU inference, after `fuseActivations`: each convolution NNPACK's Winograd
  /// kernel computes (3×3, stride 1, undilated, ungrouped) times it against oneDNN's
  /// (float32, or int8 once `quantizeConvolutions` has run: on AVX2, oneDNN's int8
  /// 3×3 kernels on 1024 and 2048 channels are slower than float32 Winograd) on the
  /// first input of each shape it sees, layout copies included, and keeps the faster.
  /// Convolutions inside an int8 chain (`Int8Chain`) stay int8. Winograd rounds less exactly (outputs differ from oneDNN's in
  /// about the fifth significant digit), so by default it has to be 5 % faster
  /// (`winogradBelow` 0.95 of oneDNN's time). The first pass at each input size runs
  /// each such convolution five more times. Evaluation mode only; returning to
  /// training, or loading weights, undoes it. Returns how many convolutions measure.
  @discardableResult
  public func measureConvolutionKernels(winogradBelow: Double = 0.95) throws -> Int {
    guard !isTraining else { throw NNError("measureConvolutionKernels: call eval() first") }
    guard winogradBelow > 0 else { throw NNError("measureConvolutionKernels: winogradBelow must be positive, got \(winogradBelow)") }
    var count = 0
    for case let conv as Conv2d in modules() where conv.winogradApplies {
      conv.kernelChoice = KernelChoice(winogradBelow: winogradBelow)
      count += 1
    }
    return count
  }

  /// What `measureConvolutionKernels` measured, layer by layer in registration order.
  public var kernelMeasurements: [KernelMeasurement] {
    namedModules().flatMap { path, module -> [KernelMeasurement] in
      guard let choice = (module as? Conv2d)?.kernelChoice else { return [] }
      return choice.measured.values.sorted { $0.inputShape.lexicographicallyPrecedes($1.inputShape) }.map {
        var measurement = $0
        measurement.layer = path
        return measurement
      }
    }
  }
}
