import CTorchShim
import Foundation

/// Process-wide settings of the engine: version, seeding, threads and grad mode.
public enum Torch {
  /// The libtorch version SegKit was built against, e.g. "2.15.0".
  public static var version: String { String(cString: sk_torch_version()) }

  /// Seeds every generator (CPU and each GPU), as torch.manual_seed.
  public static func manualSeed(_ seed: UInt64) {
    infallible(sk_manual_seed(seed))
  }

  /// Threads used inside one operation (intra-op parallelism).
  public static var threads: Int { Int(sk_get_num_threads()) }

  /// Whether this CPU has VNNI (AVX-512 or AVX) for int8 dot products; other architectures: assumed.
  public static let cpuHasVNNI = sk_cpu_has_vnni() != 0

  /// Whether this libtorch has NNPACK and this CPU runs it (its Winograd convolutions).
  public static let hasNNPACK = sk_nnpack_available() != 0

  /// Whether this CPU has oneDNN's bfloat16 convolutions (AVX-512 BW/VL/DQ or AVX-NE-CONVERT on x86).
  public static let cpuHasBFloat16Convolutions = sk_cpu_has_bf16_convolutions() != 0

  /// Refuses bfloat16 inference on a CPU without bfloat16 convolutions, before a model is converted.
  public static func requireBFloat16Convolutions(on device: Device) throws {
    guard device == .cpu, !cpuHasBFloat16Convolutions else { return }
    throw TorchError("bf16 needs a CPU with bfloat16 convolutions (AVX-512 BW, VL and DQ, or AVX-NE-CONVERT); this one has neither: use fp32 or int8")
  }

  public static func setThreads(_ count: Int) throws {
    try check(sk_set_num_threads(Int32(clamping: count)))
  }

  /// Runs `body` under libtorch's operation profiler (CPU, this thread) and writes
  /// its Chrome trace, the format torch.profiler exports, to `trace`.
  public static func profile<R>(writingTraceTo trace: URL, _ body: () throws -> R) throws -> R {
    try check(sk_profiler_start())
    let result: R
    do { result = try body() } catch {
      _ = sk_profiler_stop(nil)
      throw error
    }
    try check(sk_profiler_stop(trace.path))
    return result
  }

  /// Whether operations on this thread record gradients.
  public static var isGradEnabled: Bool { sk_is_grad_enabled() != 0 }

  /// Runs `body` without recording gradients (as `torch.no_grad()`), restoring the
  /// previous mode afterwards. Grad mode is per thread, so the body is synchronous.
  public static func withNoGrad<R>(_ body: () throws -> R) rethrows -> R {
    try withGradMode(false, body)
  }

  /// Runs `body` in inference mode (as `torch.inference_mode()`): no autograd
  /// bookkeeping at all, the fastest way to run a trained model. Tensors made
  /// inside cannot later take part in autograd. Synchronous, like grad mode.
  public static func withInferenceMode<R>(_ body: () throws -> R) throws -> R {
    var guardHandle: sk_guard?
    try check(sk_inference_mode_enter(&guardHandle))
    defer { sk_inference_mode_exit(guardHandle) }
    return try body()
  }

  /// Runs `body` with gradient recording forced on or off.
  public static func withGradMode<R>(_ enabled: Bool, _ body: () throws -> R) rethrows -> R {
    let previous = sk_set_grad_enabled(enabled ? 1 : 0)
    defer { sk_set_grad_enabled(previous) }
    return try body()
  }
}

/// Automatic differentiation on tensors.
extension Tensor {
  public var requiresGrad: Bool {
    var flag: Int32 = 0
    infallible(sk_requires_grad(handle, &flag))
    return flag != 0
  }

  /// Starts (or stops) recording operations on this leaf tensor; returns self.
  @discardableResult
  public func requiresGrad(_ flag: Bool) throws -> Tensor {
    try check(sk_set_requires_grad(handle, flag ? 1 : 0))
    return self
  }

  public var isLeaf: Bool {
    var flag: Int32 = 0
    infallible(sk_is_leaf(handle, &flag))
    return flag != 0
  }

  /// Accumulates d(self)/d(leaf) into every leaf's `grad`. `gradient` is needed
  /// unless self has one element; `retainGraph` allows a second backward pass.
  public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false) throws {
    try check(sk_backward(handle, gradient?.handle, retainGraph ? 1 : 0))
  }

  /// The accumulated gradient, or nil before the first backward pass.
  public var grad: Tensor? {
    var out: sk_tensor?
    infallible(sk_grad(handle, &out))
    return out.map { Tensor(owning: $0) }
  }

  public func setGrad(_ gradient: Tensor?) throws {
    try check(sk_set_grad(handle, gradient?.handle))
  }

  /// Clears the gradient: drops it (the default, as PyTorch) or fills it with zeros.
  public func zeroGrad(setToNone: Bool = true) throws {
    try check(sk_zero_grad(handle, setToNone ? 1 : 0))
  }

  /// The same values cut from the autograd graph (shares storage).
  public func detach() throws -> Tensor { try produce { sk_detach(handle, $0) } }
}
