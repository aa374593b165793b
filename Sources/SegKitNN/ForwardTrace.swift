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

  @TaskLocal static var active: ForwardTrace?

  /// Runs `body` and returns its result with the layer calls made inside it.
  public static func record<R>(_ body: () throws -> R) rethrows -> (result: R, trace: ForwardTrace) {
    let trace = ForwardTrace()
    let result = try $active.withValue(trace) { try body() }
    return (result, trace)
  }

  @inline(__always)
  static func note(_ layer: Module, _ input: Tensor, _ output: Tensor) -> Tensor {
    if let trace = active { trace.calls.append(Call(layer: layer, inputShape: input.shape, outputShape: output.shape)) }
    return output
  }
}
