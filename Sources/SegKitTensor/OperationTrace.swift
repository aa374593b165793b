import Foundation

/// Records the tensor operations of a computation as it runs, so that it can be
/// written as a graph (ONNX export): each step is an operation with its settings,
/// the tensors it read and the tensor it made.
///
/// Only operations that know how to describe themselves are recorded. A tensor made
/// while recording by any other operation is remembered as unexplained, so a graph
/// writer can refuse to treat it as a constant: a computation that used an operation
/// the trace does not know fails with that operation's place, instead of exporting a
/// wrong graph. Tensors made before recording (weights, buffers) are constants.
public final class OperationTrace {
  public enum Binary: String, Sendable { case add, sub, mul, div }
  public enum Unary: String, Sendable { case relu, relu6, sigmoid, hardswish, hardsigmoid, tanh, exp, log }
  public enum Reduction: String, Sendable { case sum, max, prod }

  public enum Operation {
    case conv2d(stride: Size2, padding: Size2, dilation: Size2, groups: Int)
    case convTranspose2d(stride: Size2, padding: Size2, outputPadding: Size2, dilation: Size2, groups: Int)
    /// Inference-mode batch norm: inputs x, weight?, bias?, running mean, running variance.
    case batchNorm(eps: Double, hasWeight: Bool, hasBias: Bool)
    case binary(Binary)
    /// `tensor op scalar`, or `scalar op tensor` when `scalarFirst`.
    case binaryScalar(Binary, Double, scalarFirst: Bool)
    case unary(Unary)
    case leakyReLU(slope: Double)
    case clamp(min: Double?, max: Double?)
    case maxPool2d(kernel: Size2, stride: Size2, padding: Size2, dilation: Size2, ceilMode: Bool)
    case avgPool2d(kernel: Size2, stride: Size2, padding: Size2, ceilMode: Bool, countIncludePad: Bool)
    case adaptiveAvgPool2d(Size2)
    case interpolate(size: Size2, mode: Interpolation, alignCorners: Bool)
    case concatenate(dim: Int)
    case narrow(dim: Int, start: Int, length: Int)
    case pad([Int], mode: PadMode, value: Double)
    case reshape([Int])
    case permute([Int])
    case expand([Int])
    case mean(dims: [Int], keepDim: Bool)
    /// A sum or largest value over `dims` (all when empty).
    case reduce(Reduction, dims: [Int], keepDim: Bool)
    case linear(hasBias: Bool)
    case softmax(dim: Int)
    case argmax(dim: Int, keepDim: Bool)
    /// The value unchanged (contiguous copies, moves between devices, inference-mode dropout).
    case identity
    case cast(DType)
  }

  public struct Step {
    public let operation: Operation
    public let inputs: [Tensor]
    public let output: Tensor
  }

  public private(set) var steps: [Step] = []
  private var unexplained: Set<ObjectIdentifier> = []
  /// Every tensor seen, kept alive so that no identity is reused while recording.
  private var kept: [Tensor] = []

  @TaskLocal static var active: OperationTrace?
  /// Traces recording anywhere; lets tensor creation skip the task-local lookup.
  nonisolated(unsafe) fileprivate static var recordingCount = 0
  private static let countLock = NSLock()

  /// Runs `body` while recording its tensor operations on this task.
  public static func record<R>(_ body: () throws -> R) rethrows -> (result: R, trace: OperationTrace) {
    let trace = OperationTrace()
    countLock.lock()
    recordingCount += 1
    countLock.unlock()
    defer {
      countLock.lock()
      recordingCount -= 1
      countLock.unlock()
    }
    let result = try $active.withValue(trace) { try body() }
    return (result, trace)
  }

  /// Whether `tensor` was made, or changed in place, while recording by an operation
  /// the trace does not know.
  public func isUnexplained(_ tensor: Tensor) -> Bool {
    unexplained.contains(ObjectIdentifier(tensor)) || changedInPlace.contains(ObjectIdentifier(tensor))
  }
  private var changedInPlace: Set<ObjectIdentifier> = []

  @inline(__always)
  static func created(_ tensor: Tensor) {
    guard recordingCount > 0, let trace = active else { return }
    trace.kept.append(tensor)
    trace.unexplained.insert(ObjectIdentifier(tensor))
  }

  /// Whether operations are being recorded. Code that skips an operation when it
  /// would change nothing at the current size (a resize to the same size) runs it
  /// anyway while recording, so that a graph with open sizes holds it for the sizes
  /// where it does change something.
  public static var isRecording: Bool { recordingCount > 0 && active != nil }

  /// Records `output` as made by `operation` from `inputs`; returns `output`.
  @inline(__always)
  @discardableResult
  static func note(_ operation: @autoclosure () -> Operation, _ inputs: @autoclosure () -> [Tensor?], _ output: Tensor) -> Tensor {
    guard recordingCount > 0, let trace = active else { return output }
    let present = inputs().compactMap { $0 }
    trace.unexplained.remove(ObjectIdentifier(output))
    trace.kept.append(contentsOf: present)
    trace.steps.append(Step(operation: operation(), inputs: present, output: output))
    return output
  }

  /// Notes that `tensor` is being changed in place, which a recorded graph cannot show.
  @inline(__always)
  static func modified(_ tensor: Tensor) {
    tensor.int8Source = nil  // its int8 values no longer stand for it
    guard recordingCount > 0, let trace = active else { return }
    trace.kept.append(tensor)
    trace.changedInPlace.insert(ObjectIdentifier(tensor))
  }

  /// Marks `tensor`, made while recording from numbers alone, as a constant.
  @inline(__always)
  @discardableResult
  static func constant(_ tensor: Tensor) -> Tensor {
    guard recordingCount > 0, let trace = active else { return tensor }
    trace.unexplained.remove(ObjectIdentifier(tensor))
    return tensor
  }
}

extension Tensor {
  /// Records `self` as made by `operation` (nil: an operation the trace does not know) from `inputs`.
  @inline(__always)
  func traced(_ operation: @autoclosure () -> OperationTrace.Operation?, _ inputs: @autoclosure () -> [Tensor?]) -> Tensor {
    guard OperationTrace.recordingCount > 0, let operation = operation() else { return self }
    return OperationTrace.note(operation, inputs(), self)
  }
}
