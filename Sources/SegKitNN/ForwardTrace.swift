import Foundation

/// Records which weighted layers ran during a forward pass and on what shapes,
/// for analyses such as FLOP counting. Layers report themselves only while a
/// trace is active on the current task, so normal forwards pay one check.
public final class ForwardTrace {
  public struct Call {
    public let layer: Module
    public let inputShape: [Int]
    public let outputShape: [Int]
  }

  public private(set) var calls: [Call] = []
  /// Called after each layer instead of recording it (memory sampling).
  var onLayer: (() -> Void)?

  @TaskLocal static var active: ForwardTrace?

  /// Runs `body` and returns its result with the layer calls made inside it.
  public static func record<R>(_ body: () throws -> R) rethrows -> (result: R, trace: ForwardTrace) {
    let trace = ForwardTrace()
    let result = try $active.withValue(trace) { try body() }
    return (result, trace)
  }

  @inline(__always)
  static func note(_ layer: Module, _ input: Tensor, _ output: Tensor) -> Tensor {
    if let trace = active {
      if let onLayer = trace.onLayer { onLayer() } else { trace.calls.append(Call(layer: layer, inputShape: input.shape, outputShape: output.shape)) }
    }
    return output
  }
}

/// How a computation's memory grows with its input's pixels, measured: the peak heap
/// use of two small runs, sampled at every layer's output (where a pass holds the
/// most) and at the end, and the line through them. Convolutional networks' activations
/// grow with the pixels, their weights and workspaces not, so the line extrapolates
/// to large inputs without running them.
public struct MemoryGrowth: Sendable {
  public let fixedBytes: Double
  public let bytesPerPixel: Double

  /// Bytes for an input of `pixels` pixels.
  public func bytes(pixels: Int) -> Int { Int(min(0x1p62, max(0, fixedBytes + bytesPerPixel * Double(pixels)))) }

  /// Runs `body` at two sizes, after a first run at the small one whose one-time
  /// allocations (caches, prepacked weights) would otherwise count; nil where the heap
  /// cannot be measured, or where `body` fails at those sizes (a network that needs
  /// larger inputs is not estimated rather than refused).
  public static func measure<R>(small: Size2 = Size2(64, 64), large: Size2 = Size2(128, 128),
                                _ body: (Size2) throws -> R) -> MemoryGrowth? {
    guard (try? body(small)) != nil, let first = try? peakHeapBytes({ try body(small) }),
          let second = try? peakHeapBytes({ try body(large) }) else { return nil }
    let (p1, p2) = (Double(small.height * small.width), Double(large.height * large.width))
    let slope = max(0, Double(second - first) / (p2 - p1))
    return MemoryGrowth(fixedBytes: max(0, Double(second) - slope * p2), bytesPerPixel: slope)
  }

  /// The most heap `body` held above what the process held before it (its result
  /// included: it is still held at the last sample).
  public static func peakHeapBytes<R>(_ body: () throws -> R) throws -> Int? {
    guard let start = MemoryBudget.heapInUse() else { return nil }
    var peak = start
    let trace = ForwardTrace()
    trace.onLayer = { if let now = MemoryBudget.heapInUse() { peak = max(peak, now) } }
    let result = try ForwardTrace.$active.withValue(trace) { try body() }
    if let now = MemoryBudget.heapInUse() { peak = max(peak, now) }
    withExtendedLifetime(result) {}
    return peak - start
  }
}
