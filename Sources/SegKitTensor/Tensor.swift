import CTorchShim
import Foundation

/// A libtorch error surfaced to Swift: shape mismatches, wrong dtypes,
/// unavailable devices, unreadable files. `message` is libtorch's own text.
public struct TorchError: Error, CustomStringConvertible, Equatable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// Element types a tensor can hold. Raw values are the shim's codes.
public enum DType: Int32, CaseIterable, CustomStringConvertible, Sendable {
  case uint8 = 0, int8 = 1, int16 = 2, int32 = 3, int64 = 4
  case float16 = 5, float32 = 6, float64 = 7, bool = 11, bfloat16 = 15

  public var isFloatingPoint: Bool {
    switch self {
    case .float16, .float32, .float64, .bfloat16: return true
    default: return false
    }
  }

  /// Bytes per element.
  public var byteSize: Int {
    switch self {
    case .uint8, .int8, .bool: return 1
    case .int16, .float16, .bfloat16: return 2
    case .int32, .float32: return 4
    case .int64, .float64: return 8
    }
  }

  public var description: String {
    switch self {
    case .uint8: return "uint8"
    case .int8: return "int8"
    case .int16: return "int16"
    case .int32: return "int32"
    case .int64: return "int64"
    case .float16: return "float16"
    case .float32: return "float32"
    case .float64: return "float64"
    case .bool: return "bool"
    case .bfloat16: return "bfloat16"
    }
  }

  var code: sk_dtype { sk_dtype(UInt32(rawValue)) }
}

/// Where a tensor lives.
public struct Device: Equatable, Hashable, CustomStringConvertible, Sendable {
  public enum Kind: Int32, Sendable { case cpu = 0, cuda = 1, mps = 2 }
  public let kind: Kind
  public let index: Int

  public init(_ kind: Kind, index: Int = 0) {
    self.kind = kind
    self.index = index
  }

  public static let cpu = Device(.cpu)
  public static func cuda(_ index: Int = 0) -> Device { Device(.cuda, index: index) }
  public static let mps = Device(.mps)

  /// Parses "cpu", "cuda", "cuda:1" or "mps".
  public init(parsing text: String) throws {
    let parts = text.lowercased().split(separator: ":", omittingEmptySubsequences: false)
    let index = parts.count == 2 ? Int(parts[1]) : 0
    switch (parts.first.map(String.init), index, parts.count) {
    case ("cpu", 0?, 1): self = .cpu
    case ("cuda", let i?, _) where i >= 0 && parts.count <= 2: self = .cuda(i)
    case ("mps", 0?, 1): self = .mps
    default: throw TorchError("unknown device '\(text)': expected cpu, cuda, cuda:N or mps")
    }
  }

  /// Number of CUDA devices this libtorch can use (0 for a CPU-only build).
  public static var cudaDeviceCount: Int { Int(sk_cuda_device_count()) }
  public static var isMPSAvailable: Bool { sk_mps_is_available() != 0 }

  /// Whether tensors can be placed on this device in this process.
  public var isAvailable: Bool {
    switch kind {
    case .cpu: return true
    case .cuda: return index >= 0 && index < Device.cudaDeviceCount
    case .mps: return Device.isMPSAvailable
    }
  }

  /// Every device available here, CPU first.
  public static var available: [Device] {
    [.cpu] + (0..<cudaDeviceCount).map { .cuda($0) } + (isMPSAvailable ? [.mps] : [])
  }

  var cType: sk_device_type { sk_device_type(UInt32(kind.rawValue)) }
  var cIndex: Int32 { Int32(index) }

  public var description: String {
    switch kind {
    case .cpu: return "cpu"
    case .cuda: return "cuda:\(index)"
    case .mps: return "mps"
    }
  }
}

/// Swift element types that map one-to-one onto a tensor dtype.
public protocol TensorScalar {
  static var dtype: DType { get }
}
extension Float: TensorScalar { public static var dtype: DType { .float32 } }
extension Double: TensorScalar { public static var dtype: DType { .float64 } }
extension Int64: TensorScalar { public static var dtype: DType { .int64 } }
extension Int: TensorScalar { public static var dtype: DType { .int64 } }
extension Int32: TensorScalar { public static var dtype: DType { .int32 } }
extension Int16: TensorScalar { public static var dtype: DType { .int16 } }
extension Int8: TensorScalar { public static var dtype: DType { .int8 } }
extension UInt8: TensorScalar { public static var dtype: DType { .uint8 } }
extension Bool: TensorScalar { public static var dtype: DType { .bool } }
#if !(os(macOS) && arch(x86_64))
extension Float16: TensorScalar { public static var dtype: DType { .float16 } }
#endif

// MARK: - Calling the shim

@inline(__always)
func check(_ status: sk_status) throws {
  if status != 0 { throw TorchError(String(cString: sk_last_error())) }
}

/// Runs a shim call that produces one tensor.
@inline(__always)
func produce(_ call: (UnsafeMutablePointer<sk_tensor?>) -> sk_status) throws -> Tensor {
  var out: sk_tensor?
  try check(call(&out))
  return Tensor(owning: out!)
}

/// Runs a shim call that produces two tensors (values and indices).
@inline(__always)
func produce2(
  _ call: (UnsafeMutablePointer<sk_tensor?>, UnsafeMutablePointer<sk_tensor?>) -> sk_status
) throws -> (Tensor, Tensor) {
  var a: sk_tensor?
  var b: sk_tensor?
  try check(call(&a, &b))
  return (Tensor(owning: a!), Tensor(owning: b!))
}

/// Queries that cannot fail on a live handle; a failure is a SegKit bug.
@inline(__always)
func infallible(_ status: sk_status) {
  if status != 0 { fatalError("libtorch query failed: \(String(cString: sk_last_error()))") }
}

@inline(__always)
func withInt64s<R>(_ values: [Int], _ body: (UnsafePointer<Int64>?, Int64) throws -> R) rethrows -> R {
  let converted = values.map(Int64.init)
  return try converted.withUnsafeBufferPointer { try body($0.baseAddress, Int64($0.count)) }
}

/// An n-dimensional array on a device, backed by a libtorch tensor.
///
/// `Tensor` is a reference type: copies of a reference share storage, and
/// in-place operations (`add_`, `+=`, …) are visible through every reference,
/// as in PyTorch. The handle is released when the last reference goes away.
/// Not thread-safe: use one tensor from one thread at a time.
public final class Tensor {
  let handle: sk_tensor

  /// The int8 activations this tensor was dequantised from (`QuantizedActivation.dequantized`),
  /// so an int8 convolution that quantises its input the same way reads them instead of
  /// quantising again. SegKit's in-place operations forget them (`OperationTrace.modified`).
  var int8Source: QuantizedActivation?

  init(owning handle: sk_tensor) {
    self.handle = handle
    OperationTrace.created(self)
  }

  deinit { sk_free(handle) }

  // MARK: Properties

  public var rank: Int {
    var d: Int64 = 0
    infallible(sk_dim(handle, &d))
    return Int(d)
  }

  public var shape: [Int] {
    let n = rank
    var sizes = [Int64](repeating: 0, count: n)
    infallible(sk_sizes(handle, &sizes, Int64(n)))
    return sizes.map(Int.init)
  }

  public var strides: [Int] {
    let n = rank
    var values = [Int64](repeating: 0, count: n)
    infallible(sk_strides(handle, &values, Int64(n)))
    return values.map(Int.init)
  }

  /// Number of elements.
  public var count: Int { shape.reduce(1, *) }

  public var dtype: DType {
    var code: Int32 = 0
    infallible(sk_dtype_of(handle, &code))
    return DType(rawValue: code)!
  }

  public var device: Device {
    var kind: Int32 = 0
    var index: Int32 = 0
    infallible(sk_device_of(handle, &kind, &index))
    return Device(Device.Kind(rawValue: kind)!, index: Int(index))
  }

  public var isContiguous: Bool {
    var flag: Int32 = 0
    infallible(sk_is_contiguous(handle, SK_CONTIGUOUS, &flag))
    return flag != 0
  }

  /// The single value of a one-element tensor.
  public func item() throws -> Double {
    var value = 0.0
    try check(sk_item(handle, &value))
    return value
  }

  // MARK: Creation

  static func filled(_ fill: sk_fill, _ shape: [Int], _ dtype: DType, _ device: Device) throws -> Tensor {
    OperationTrace.constant(try withInt64s(shape) { s, n in
      try produce { sk_filled(fill, s, n, dtype.code, device.cType, device.cIndex, $0) }
    })
  }

  public static func zeros(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
    try filled(SK_FILL_ZEROS, shape, dtype, device)
  }

  public static func ones(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
    try filled(SK_FILL_ONES, shape, dtype, device)
  }

  /// Uninitialised storage, for outputs that are written before being read.
  public static func empty(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
    try filled(SK_FILL_EMPTY, shape, dtype, device)
  }

  /// Uniform samples in [0, 1).
  public static func rand(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
    try filled(SK_FILL_RAND, shape, dtype, device)
  }

  /// Standard normal samples.
  public static func randn(_ shape: [Int], dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
    try filled(SK_FILL_RANDN, shape, dtype, device)
  }

  /// Uniform integers in [low, high).
  public static func randint(
    _ low: Int, _ high: Int, _ shape: [Int], dtype: DType = .int64, device: Device = .cpu
  ) throws -> Tensor {
    try withInt64s(shape) { s, n in
      try produce {
        sk_randint(Int64(low), Int64(high), s, n, dtype.code, sk_device_type(UInt32(device.kind.rawValue)),
                   Int32(device.index), $0)
      }
    }
  }

  public static func full(_ shape: [Int], _ value: Double, dtype: DType = .float32, device: Device = .cpu) throws -> Tensor {
    OperationTrace.constant(try withInt64s(shape) { s, n in
      try produce { sk_full(s, n, value, dtype.code, device.cType, device.cIndex, $0) }
    })
  }

  /// Values from `start` up to (not including) `end` in steps of `step`. Without
  /// a dtype, as torch.arange: int64 when all three are whole numbers, else float32.
  public static func arange(
    _ start: Double, _ end: Double, step: Double = 1, dtype: DType? = nil, device: Device = .cpu
  ) throws -> Tensor {
    let whole = [start, end, step].allSatisfy { $0.rounded() == $0 }
    let dtype = dtype ?? (whole ? .int64 : .float32)
    return OperationTrace.constant(try produce {
      sk_arange(start, end, step, dtype.code, device.cType, device.cIndex, $0)
    })
  }

  /// `arange(0, end)`, as torch.arange(end).
  public static func arange(_ end: Double, dtype: DType? = nil, device: Device = .cpu) throws -> Tensor {
    try arange(0, end, dtype: dtype, device: device)
  }

  /// A CPU tensor holding a copy of `values`, shaped `shape` (1-D when omitted).
  public convenience init<T: TensorScalar>(_ values: [T], shape: [Int]? = nil) throws {
    let shape = shape ?? [values.count]
    guard shape.reduce(1, *) == values.count else {
      throw TorchError("\(values.count) values cannot fill a tensor of shape \(shape)")
    }
    let handle = try values.withUnsafeBytes { raw in
      try Tensor.handle(fromBytes: raw, shape: shape, dtype: T.dtype)
    }
    self.init(owning: handle)
    OperationTrace.constant(self)
  }

  /// A CPU tensor holding a copy of little-endian element bytes.
  public convenience init(bytes: UnsafeRawBufferPointer, shape: [Int], dtype: DType) throws {
    self.init(owning: try Tensor.handle(fromBytes: bytes, shape: shape, dtype: dtype))
    OperationTrace.constant(self)
  }

  /// A 0-dimensional tensor.
  public convenience init(scalar: Double, dtype: DType = .float32) throws {
    let t = try Tensor.full([], scalar, dtype: dtype)
    var out: sk_tensor?
    try check(sk_detach(t.handle, &out))
    self.init(owning: out!)
    OperationTrace.constant(self)
  }

  private static func handle(fromBytes raw: UnsafeRawBufferPointer, shape: [Int], dtype: DType) throws -> sk_tensor {
    var out: sk_tensor?
    try withInt64s(shape) { s, n in
      try check(sk_from_bytes(raw.baseAddress, raw.count, s, n, dtype.code, &out))
    }
    return out!
  }

  // MARK: Reading values back

  /// The elements in row-major order, converted to `T` when the dtype differs.
  public func toArray<T: TensorScalar>(_ type: T.Type = T.self) throws -> [T] {
    let source = dtype == T.dtype ? self : try to(T.dtype)
    let n = source.count
    return try [T](unsafeUninitializedCapacity: n) { buffer, initialized in
      try check(sk_copy_to_bytes(source.handle, UnsafeMutableRawPointer(buffer.baseAddress), n * MemoryLayout<T>.stride))
      initialized = n
    }
  }

  /// The raw little-endian element bytes in row-major order.
  public func data() throws -> Data {
    var data = Data(count: count * dtype.byteSize)
    let size = data.count
    try data.withUnsafeMutableBytes { raw in
      try check(sk_copy_to_bytes(handle, raw.baseAddress, size))
    }
    return data
  }

  // MARK: Conversion

  public func to(_ dtype: DType) throws -> Tensor { try to(dtype: dtype, device: device) }

  public func to(_ device: Device) throws -> Tensor { try to(dtype: dtype, device: device) }

  public func to(dtype: DType, device: Device) throws -> Tensor {
    let source = OperationTrace.isRecording ? self.dtype : dtype
    return try produce { sk_to(handle, dtype.code, device.cType, device.cIndex, $0) }
      .traced(dtype == source ? .identity : .cast(dtype), [self])
  }

  public enum MemoryFormat: Sendable { case contiguous, channelsLast }

  /// The tensor laid out in `format` (itself when it already is; channels-last gets
  /// its canonical strides, see `isLaidOut`).
  public func contiguous(_ format: MemoryFormat = .contiguous) throws -> Tensor {
    OperationTrace.note(.identity, [self], try produce { sk_contiguous(handle, format == .channelsLast ? SK_CHANNELS_LAST : SK_CONTIGUOUS, $0) })
  }

  public func isContiguous(_ format: MemoryFormat) -> Bool {
    var flag: Int32 = 0
    infallible(sk_is_contiguous(handle, format == .channelsLast ? SK_CHANNELS_LAST : SK_CONTIGUOUS, &flag))
    return flag != 0
  }

  /// Whether the strides are exactly `format`'s own (`isContiguous` also accepts
  /// others where a dimension has size 1; oneDNN's kernel choice does not).
  public func isLaidOut(_ format: MemoryFormat) -> Bool {
    let shape = self.shape
    switch format {
    case .contiguous:
      return strides == shape.indices.map { shape[($0 + 1)...].reduce(1, *) }
    case .channelsLast:
      return shape.count == 4 && strides == [shape[1] * shape[2] * shape[3], 1, shape[3] * shape[1], shape[1]]
    }
  }

  /// A copy with its own storage (and its own place in the autograd graph).
  public func clone() throws -> Tensor { try produce { sk_clone(handle, $0) } }

  /// Copies `source` into this tensor in place (broadcasting, converting dtype and device).
  public func copy_(_ source: Tensor) throws {
    OperationTrace.modified(self)
    try check(sk_copy_(handle, source.handle))
  }

  /// Whether every element is close: |a - b| <= atol + rtol * |b|.
  public func allClose(_ other: Tensor, rtol: Double = 1e-5, atol: Double = 1e-8) throws -> Bool {
    var flag: Int32 = 0
    try check(sk_allclose(handle, other.handle, rtol, atol, &flag))
    return flag != 0
  }
}

extension Tensor: CustomStringConvertible {
  /// PyTorch's own formatting of the values, dtype and shape.
  public var description: String {
    var text: UnsafeMutablePointer<CChar>?
    guard sk_describe(handle, &text) == 0, let text else { return "Tensor(\(shape), \(dtype))" }
    defer { sk_free_string(text) }
    return String(cString: text)
  }
}
