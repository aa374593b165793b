import CTorchShim

// Elementwise arithmetic with broadcasting, comparisons, reductions and
// linear algebra. Numbers mix with tensors as Python numbers do in PyTorch:
// `intTensor + 1` stays integer, `intTensor + 0.5` becomes floating point.

extension Tensor {
  func binary(_ op: sk_binary_op, _ other: Tensor) throws -> Tensor {
    try produce { sk_binary(op, handle, other.handle, $0) }
  }

  func binary(_ op: sk_binary_op, _ scalar: Double) throws -> Tensor {
    try produce { sk_binary_scalar(op, handle, scalar, $0) }
  }

  func unary(_ op: sk_unary_op) throws -> Tensor {
    try produce { sk_unary(op, handle, $0) }
  }

  func unaryInPlace(_ op: sk_unary_op) throws {
    OperationTrace.modified(self)
    try check(sk_unary_(op, handle))
  }

  // MARK: Operators

  public static func + (a: Tensor, b: Tensor) throws -> Tensor { OperationTrace.note(.binary(.add), [a, b], try a.binary(SK_ADD, b)) }
  public static func - (a: Tensor, b: Tensor) throws -> Tensor { OperationTrace.note(.binary(.sub), [a, b], try a.binary(SK_SUB, b)) }
  public static func * (a: Tensor, b: Tensor) throws -> Tensor { OperationTrace.note(.binary(.mul), [a, b], try a.binary(SK_MUL, b)) }
  public static func / (a: Tensor, b: Tensor) throws -> Tensor { OperationTrace.note(.binary(.div), [a, b], try a.binary(SK_DIV, b)) }

  public static func + (a: Tensor, b: Double) throws -> Tensor { OperationTrace.note(.binaryScalar(.add, b, scalarFirst: false), [a], try a.binary(SK_ADD, b)) }
  public static func - (a: Tensor, b: Double) throws -> Tensor { OperationTrace.note(.binaryScalar(.sub, b, scalarFirst: false), [a], try a.binary(SK_SUB, b)) }
  public static func * (a: Tensor, b: Double) throws -> Tensor { OperationTrace.note(.binaryScalar(.mul, b, scalarFirst: false), [a], try a.binary(SK_MUL, b)) }
  public static func / (a: Tensor, b: Double) throws -> Tensor { OperationTrace.note(.binaryScalar(.div, b, scalarFirst: false), [a], try a.binary(SK_DIV, b)) }

  public static func + (a: Double, b: Tensor) throws -> Tensor { OperationTrace.note(.binaryScalar(.add, a, scalarFirst: true), [b], try b.binary(SK_ADD, a)) }
  public static func * (a: Double, b: Tensor) throws -> Tensor { OperationTrace.note(.binaryScalar(.mul, a, scalarFirst: true), [b], try b.binary(SK_MUL, a)) }
  public static func - (a: Double, b: Tensor) throws -> Tensor {
    OperationTrace.note(.binaryScalar(.sub, a, scalarFirst: true), [b], try produce { sk_scalar_binary(SK_SUB, a, b.handle, $0) })
  }
  public static func / (a: Double, b: Tensor) throws -> Tensor {
    try produce { sk_scalar_binary(SK_DIV, a, b.handle, $0) }
  }

  public static prefix func - (a: Tensor) throws -> Tensor { try a.unary(SK_NEG) }

  /// In place, as PyTorch's `a += b`: every reference to `a` sees the change.
  public static func += (a: Tensor, b: Tensor) throws { OperationTrace.modified(a); try check(sk_binary_(SK_ADD, a.handle, b.handle)) }
  public static func -= (a: Tensor, b: Tensor) throws { OperationTrace.modified(a); try check(sk_binary_(SK_SUB, a.handle, b.handle)) }
  public static func *= (a: Tensor, b: Tensor) throws { OperationTrace.modified(a); try check(sk_binary_(SK_MUL, a.handle, b.handle)) }
  public static func /= (a: Tensor, b: Tensor) throws { OperationTrace.modified(a); try check(sk_binary_(SK_DIV, a.handle, b.handle)) }
  public static func += (a: Tensor, b: Double) throws { OperationTrace.modified(a); try check(sk_binary_scalar_(SK_ADD, a.handle, b)) }
  public static func -= (a: Tensor, b: Double) throws { OperationTrace.modified(a); try check(sk_binary_scalar_(SK_SUB, a.handle, b)) }
  public static func *= (a: Tensor, b: Double) throws { OperationTrace.modified(a); try check(sk_binary_scalar_(SK_MUL, a.handle, b)) }
  public static func /= (a: Tensor, b: Double) throws { OperationTrace.modified(a); try check(sk_binary_scalar_(SK_DIV, a.handle, b)) }

  // Pointwise comparisons give bool tensors.
  public static func .== (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(SK_EQ, b) }
  public static func .!= (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(SK_NE, b) }
  public static func .< (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(SK_LT, b) }
  public static func .<= (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(SK_LE, b) }
  public static func .> (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(SK_GT, b) }
  public static func .>= (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(SK_GE, b) }
  public static func .== (a: Tensor, b: Double) throws -> Tensor { try a.binary(SK_EQ, b) }
  public static func .!= (a: Tensor, b: Double) throws -> Tensor { try a.binary(SK_NE, b) }
  public static func .< (a: Tensor, b: Double) throws -> Tensor { try a.binary(SK_LT, b) }
  public static func .<= (a: Tensor, b: Double) throws -> Tensor { try a.binary(SK_LE, b) }
  public static func .> (a: Tensor, b: Double) throws -> Tensor { try a.binary(SK_GT, b) }
  public static func .>= (a: Tensor, b: Double) throws -> Tensor { try a.binary(SK_GE, b) }
  public static func .& (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(SK_LOGICAL_AND, b) }
  public static func .| (a: Tensor, b: Tensor) throws -> Tensor { try a.binary(SK_LOGICAL_OR, b) }
  public static prefix func .! (a: Tensor) throws -> Tensor { try a.unary(SK_LOGICAL_NOT) }

  // MARK: Named binary functions

  public func pow(_ exponent: Tensor) throws -> Tensor { try binary(SK_POW, exponent) }
  public func pow(_ exponent: Double) throws -> Tensor { try binary(SK_POW, exponent) }
  public func maximum(_ other: Tensor) throws -> Tensor { try binary(SK_MAXIMUM, other) }
  public func minimum(_ other: Tensor) throws -> Tensor { try binary(SK_MINIMUM, other) }
  public func remainder(_ other: Tensor) throws -> Tensor { try binary(SK_REMAINDER, other) }
  public func remainder(_ other: Double) throws -> Tensor { try binary(SK_REMAINDER, other) }
  public func floorDivide(_ other: Tensor) throws -> Tensor { try binary(SK_FLOOR_DIV, other) }
  public func floorDivide(_ other: Double) throws -> Tensor { try binary(SK_FLOOR_DIV, other) }
  public func atan2(_ other: Tensor) throws -> Tensor { try binary(SK_ATAN2, other) }

  // In-place forms, named as in PyTorch.
  public func add_(_ other: Tensor, alpha: Double = 1) throws { OperationTrace.modified(self); try check(sk_add_scaled_(handle, other.handle, alpha)) }
  public func sub_(_ other: Tensor) throws { OperationTrace.modified(self); try check(sk_binary_(SK_SUB, handle, other.handle)) }
  public func mul_(_ other: Tensor) throws { OperationTrace.modified(self); try check(sk_binary_(SK_MUL, handle, other.handle)) }
  public func div_(_ other: Tensor) throws { OperationTrace.modified(self); try check(sk_binary_(SK_DIV, handle, other.handle)) }
  public func add_(_ value: Double) throws { OperationTrace.modified(self); try check(sk_binary_scalar_(SK_ADD, handle, value)) }
  public func mul_(_ value: Double) throws { OperationTrace.modified(self); try check(sk_binary_scalar_(SK_MUL, handle, value)) }
  public func div_(_ value: Double) throws { OperationTrace.modified(self); try check(sk_binary_scalar_(SK_DIV, handle, value)) }
  public func pow_(_ value: Double) throws { OperationTrace.modified(self); try check(sk_binary_scalar_(SK_POW, handle, value)) }
  /// self += value * a * b
  public func addcmul_(_ a: Tensor, _ b: Tensor, value: Double = 1) throws {
    OperationTrace.modified(self)
    try check(sk_addcmul_(handle, a.handle, b.handle, value))
  }
  /// self += value * a / b
  public func addcdiv_(_ a: Tensor, _ b: Tensor, value: Double = 1) throws {
    OperationTrace.modified(self)
    try check(sk_addcdiv_(handle, a.handle, b.handle, value))
  }
  /// self += weight * (end - self)
  public func lerp_(_ end: Tensor, weight: Double) throws { OperationTrace.modified(self); try check(sk_lerp_(handle, end.handle, weight)) }
  public func fill_(_ value: Double) throws { OperationTrace.modified(self); try check(sk_fill_(handle, value)) }
  public func zero_() throws { OperationTrace.modified(self); try unaryInPlace(SK_ZERO) }
  public func uniform_(from: Double = 0, to: Double = 1) throws { OperationTrace.modified(self); try check(sk_uniform_(handle, from, to)) }
  public func normal_(mean: Double = 0, std: Double = 1) throws { OperationTrace.modified(self); try check(sk_normal_(handle, mean, std)) }
  public func clamp_(min: Double? = nil, max: Double? = nil) throws {
    OperationTrace.modified(self)
    try check(sk_clamp_(handle, min ?? 0, max ?? 0, min == nil ? 0 : 1, max == nil ? 0 : 1))
  }
  public func relu_() throws { OperationTrace.modified(self); try unaryInPlace(SK_RELU) }

  // MARK: Unary functions

  public func neg() throws -> Tensor { try unary(SK_NEG) }
  public func exp() throws -> Tensor { OperationTrace.note(.unary(.exp), [self], try unary(SK_EXP)) }
  public func log() throws -> Tensor { OperationTrace.note(.unary(.log), [self], try unary(SK_LOG)) }
  public func log1p() throws -> Tensor { try unary(SK_LOG1P) }
  public func expm1() throws -> Tensor { try unary(SK_EXPM1) }
  public func sqrt() throws -> Tensor { try unary(SK_SQRT) }
  public func rsqrt() throws -> Tensor { try unary(SK_RSQRT) }
  public func abs() throws -> Tensor { try unary(SK_ABS) }
  /// x·x (recorded as that product).
  public func square() throws -> Tensor { OperationTrace.note(.binary(.mul), [self, self], try unary(SK_SQUARE)) }
  public func reciprocal() throws -> Tensor { try unary(SK_RECIPROCAL) }
  public func sign() throws -> Tensor { try unary(SK_SIGN) }
  public func floor() throws -> Tensor { try unary(SK_FLOOR) }
  public func ceil() throws -> Tensor { try unary(SK_CEIL) }
  public func round() throws -> Tensor { try unary(SK_ROUND) }
  public func sin() throws -> Tensor { try unary(SK_SIN) }
  public func cos() throws -> Tensor { try unary(SK_COS) }
  public func sigmoid() throws -> Tensor { OperationTrace.note(.unary(.sigmoid), [self], try unary(SK_SIGMOID)) }
  public func tanh() throws -> Tensor { OperationTrace.note(.unary(.tanh), [self], try unary(SK_TANH)) }
  public func relu() throws -> Tensor { OperationTrace.note(.unary(.relu), [self], try unary(SK_RELU)) }
  public func relu6() throws -> Tensor { OperationTrace.note(.unary(.relu6), [self], try unary(SK_RELU6)) }
  public func hardswish() throws -> Tensor { OperationTrace.note(.unary(.hardswish), [self], try unary(SK_HARDSWISH)) }
  public func hardsigmoid() throws -> Tensor { OperationTrace.note(.unary(.hardsigmoid), [self], try unary(SK_HARDSIGMOID)) }
  public func silu() throws -> Tensor { try unary(SK_SILU) }
  public func isNaN() throws -> Tensor { try unary(SK_ISNAN) }
  public func isFinite() throws -> Tensor { try unary(SK_ISFINITE) }
  public func logicalNot() throws -> Tensor { try unary(SK_LOGICAL_NOT) }

  public func leakyReLU(slope: Double = 0.01) throws -> Tensor {
    OperationTrace.note(.leakyReLU(slope: slope), [self], try produce { sk_leaky_relu(handle, slope, $0) })
  }

  public func clamp(min: Double? = nil, max: Double? = nil) throws -> Tensor {
    OperationTrace.note(.clamp(min: min, max: max), [self], try produce { sk_clamp(handle, min ?? 0, max ?? 0, min == nil ? 0 : 1, max == nil ? 0 : 1, $0) })
  }

  /// Elements of `a` where `condition` holds, of `b` elsewhere.
  public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) throws -> Tensor {
    try produce { sk_where(condition.handle, a.handle, b.handle, $0) }
  }

  public func maskedFill(_ mask: Tensor, _ value: Double) throws -> Tensor {
    try produce { sk_masked_fill(handle, mask.handle, value, $0) }
  }

  // MARK: Reductions

  func reduce(_ op: sk_reduce_op, _ dims: [Int], _ keepDim: Bool) throws -> Tensor {
    try withInt64s(dims) { d, n in try produce { sk_reduce(op, handle, d, n, keepDim ? 1 : 0, $0) } }
  }

  /// Sum over `dims` (all dimensions when empty).
  public func sum(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
    OperationTrace.note(.reduce(.sum, dims: dims, keepDim: keepDim), [self], try reduce(SK_SUM, dims, keepDim))
  }
  public func sum(dim: Int, keepDim: Bool = false) throws -> Tensor { try sum(dims: [dim], keepDim: keepDim) }
  /// The Euclidean norm over `dims` (all when empty); its gradient at a zero vector is 0.
  public func norm(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(SK_NORM2, dims, keepDim) }
  public func mean(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
    OperationTrace.note(.mean(dims: dims, keepDim: keepDim), [self], try reduce(SK_MEAN, dims, keepDim))
  }
  public func mean(dim: Int, keepDim: Bool = false) throws -> Tensor { try mean(dims: [dim], keepDim: keepDim) }
  public func prod(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
    OperationTrace.note(.reduce(.prod, dims: dims, keepDim: keepDim), [self], try reduce(SK_PROD, dims, keepDim))
  }
  /// Unbiased variance and standard deviation, as torch.var and torch.std.
  public func variance(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(SK_VAR, dims, keepDim) }
  public func std(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(SK_STD, dims, keepDim) }
  /// Largest value over `dims` (all when empty), as torch.amax.
  public func max(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor {
    OperationTrace.note(.reduce(.max, dims: dims, keepDim: keepDim), [self], try reduce(SK_AMAX, dims, keepDim))
  }
  public func min(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(SK_AMIN, dims, keepDim) }
  public func all(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(SK_ALL, dims, keepDim) }
  public func any(dims: [Int] = [], keepDim: Bool = false) throws -> Tensor { try reduce(SK_ANY, dims, keepDim) }

  /// Largest values along `dim` and where they are.
  public func max(dim: Int, keepDim: Bool = false) throws -> (values: Tensor, indices: Tensor) {
    let r = try produce2 { sk_max_dim(handle, Int64(dim), keepDim ? 1 : 0, 0, $0, $1) }
    return (r.0, r.1)
  }

  public func min(dim: Int, keepDim: Bool = false) throws -> (values: Tensor, indices: Tensor) {
    let r = try produce2 { sk_max_dim(handle, Int64(dim), keepDim ? 1 : 0, 1, $0, $1) }
    return (r.0, r.1)
  }

  /// Index of the largest value along `dim`, or in the flattened tensor when `dim` is nil.
  public func argmax(dim: Int? = nil, keepDim: Bool = false) throws -> Tensor {
    let result = try produce { sk_argmax(handle, Int64(dim ?? 0), dim == nil ? 1 : 0, keepDim ? 1 : 0, 0, $0) }
    guard let dim else { return result }
    return OperationTrace.note(.argmax(dim: dim, keepDim: keepDim), [self], result)
  }

  public func argmin(dim: Int? = nil, keepDim: Bool = false) throws -> Tensor {
    try produce { sk_argmax(handle, Int64(dim ?? 0), dim == nil ? 1 : 0, keepDim ? 1 : 0, 1, $0) }
  }

  /// The `k` largest (or smallest) values along `dim`, sorted, with their indices.
  public func topk(_ k: Int, dim: Int = -1, largest: Bool = true) throws -> (values: Tensor, indices: Tensor) {
    let r = try produce2 { sk_topk(handle, Int64(k), Int64(dim), largest ? 1 : 0, $0, $1) }
    return (r.0, r.1)
  }

  public func sort(dim: Int = -1, descending: Bool = false) throws -> (values: Tensor, indices: Tensor) {
    let r = try produce2 { sk_sort(handle, Int64(dim), descending ? 1 : 0, $0, $1) }
    return (r.0, r.1)
  }

  /// Occurrences of each non-negative integer (weighted when `weights` is given).
  public func bincount(weights: Tensor? = nil, minLength: Int = 0) throws -> Tensor {
    try produce { sk_bincount(handle, weights?.handle, Int64(minLength), $0) }
  }

  // MARK: Linear algebra and normalised exponentials

  public func matmul(_ other: Tensor) throws -> Tensor { try produce { sk_matmul(handle, other.handle, $0) } }

  /// x · weightᵀ + bias, as F.linear.
  public func linear(weight: Tensor, bias: Tensor? = nil) throws -> Tensor {
    OperationTrace.note(.linear(hasBias: bias != nil), [self, weight, bias], try produce { sk_linear(handle, weight.handle, bias?.handle, $0) })
  }

  public func softmax(dim: Int) throws -> Tensor {
    OperationTrace.note(.softmax(dim: dim), [self], try produce { sk_softmax(handle, Int64(dim), 0, $0) })
  }
  public func logSoftmax(dim: Int) throws -> Tensor { try produce { sk_softmax(handle, Int64(dim), 1, $0) } }

  /// int64 class indices to a one-hot int64 tensor with a new last dimension.
  public func oneHot(numClasses: Int) throws -> Tensor {
    try produce { sk_one_hot(handle, Int64(numClasses), $0) }
  }
}
