import CTorchShim

/// Shape and indexing operations. Views share storage with their source, as in PyTorch.
extension Tensor {
  public func reshape(_ shape: [Int]) throws -> Tensor {
    let result = try withInt64s(shape) { s, n in try produce { sk_reshape(handle, s, n, $0) } }
    return OperationTrace.note(.reshape(result.shape), [self], result)
  }

  /// A view with a new shape; fails when the memory layout does not allow one.
  public func view(_ shape: [Int]) throws -> Tensor {
    let result = try withInt64s(shape) { s, n in try produce { sk_view(handle, s, n, $0) } }
    return OperationTrace.note(.reshape(result.shape), [self], result)
  }

  /// Broadcasts size-1 dimensions to `shape` without copying (-1 keeps a size).
  public func expand(_ shape: [Int]) throws -> Tensor {
    let result = try withInt64s(shape) { s, n in try produce { sk_expand(handle, s, n, $0) } }
    return OperationTrace.note(.expand(result.shape), [self], result)
  }

  public func permute(_ dims: [Int]) throws -> Tensor {
    let result = try withInt64s(dims) { d, n in try produce { sk_permute(handle, d, n, $0) } }
    return OperationTrace.note(.permute(dims.map { $0 < 0 ? $0 + result.rank : $0 }), [self], result)
  }

  public func permute(_ dims: Int...) throws -> Tensor { try permute(dims) }

  public func transpose(_ dim0: Int, _ dim1: Int) throws -> Tensor {
    try produce { sk_transpose(handle, Int64(dim0), Int64(dim1), $0) }
  }

  /// A view onto the same storage with explicit sizes, strides and element offset.
  public func asStrided(shape: [Int], strides: [Int], offset: Int = 0) throws -> Tensor {
    guard shape.count == strides.count else {
      throw TorchError("asStrided: \(shape.count) sizes but \(strides.count) strides")
    }
    let s64 = strides.map(Int64.init)
    return try withInt64s(shape) { s, n in
      try s64.withUnsafeBufferPointer { st in try produce { sk_as_strided(handle, s, st.baseAddress, n, Int64(offset), $0) } }
    }
  }

  public func flip(_ dims: [Int]) throws -> Tensor {
    try withInt64s(dims) { d, n in try produce { sk_flip(handle, d, n, $0) } }
  }

  /// Tiles the tensor `repeats[i]` times along dimension i.
  public func repeated(_ repeats: [Int]) throws -> Tensor {
    try withInt64s(repeats) { r, n in try produce { sk_repeat(handle, r, n, $0) } }
  }

  /// Elements `start..<end` (every `step`-th) along `dim`; negative bounds count from the end.
  public func slice(dim: Int, start: Int = 0, end: Int = Int.max, step: Int = 1) throws -> Tensor {
    let result = try produce { sk_slice(handle, Int64(dim), Int64(start), Int64(clamping: end), Int64(step), $0) }
    guard step == 1, start >= 0 else { return result }
    let axis = try wrapDim(dim)
    return OperationTrace.note(.narrow(dim: axis, start: start, length: result.shape[axis]), [self], result)
  }

  /// `length` elements from `start` along `dim`.
  public func narrow(dim: Int, start: Int, length: Int) throws -> Tensor {
    let size = try dimSize(dim)
    let from = start < 0 ? start + size : start
    guard from >= 0, length >= 0, from + length <= size else {
      throw TorchError("narrow: range \(start)..<\(start + length) is outside dimension \(dim) of size \(size)")
    }
    return try slice(dim: dim, start: from, end: from + length)
  }

  /// Removes dimension `dim` by taking element `index` of it.
  public func select(dim: Int, index: Int) throws -> Tensor {
    // Recorded as the narrow and squeeze it is.
    if OperationTrace.isRecording { return try narrow(dim: dim, start: index < 0 ? index + dimSize(dim) : index, length: 1).squeeze(dim: dim) }
    return try produce { sk_select(handle, Int64(dim), Int64(index), $0) }
  }

  /// `t[i]` is `t.select(dim: 0, index: i)`.
  public subscript(_ index: Int) -> Tensor {
    get throws { try select(dim: 0, index: index) }
  }

  public func indexSelect(dim: Int, index: Tensor) throws -> Tensor {
    try produce { sk_index_select(handle, Int64(dim), index.handle, $0) }
  }

  /// The elements where `mask` is true, as a 1-D tensor.
  public func maskedSelect(_ mask: Tensor) throws -> Tensor {
    try produce { sk_masked_select(handle, mask.handle, $0) }
  }

  public func gather(dim: Int, index: Tensor) throws -> Tensor {
    try produce { sk_gather(handle, Int64(dim), index.handle, $0) }
  }

  /// A copy with `source`'s values written at `index` along `dim`: the inverse of `gather`.
  public func scatter(dim: Int, index: Tensor, source: Tensor) throws -> Tensor {
    try produce { sk_scatter(handle, Int64(dim), index.handle, source.handle, $0) }
  }

  /// Removes size-1 dimensions: all of them, or only `dim`.
  public func squeeze(dim: Int? = nil) throws -> Tensor {
    let result = try produce { sk_squeeze(handle, Int64(dim ?? 0), dim == nil ? 1 : 0, $0) }
    return OperationTrace.note(.reshape(result.shape), [self], result)
  }

  public func unsqueeze(_ dim: Int) throws -> Tensor {
    let result = try produce { sk_unsqueeze(handle, Int64(dim), $0) }
    return OperationTrace.note(.reshape(result.shape), [self], result)
  }

  /// Flattens dimensions `startDim...endDim` into one.
  public func flatten(startDim: Int = 0, endDim: Int = -1) throws -> Tensor {
    let s = shape
    guard !s.isEmpty else { return try reshape([1]) }
    let first = try wrapDim(startDim), last = try wrapDim(endDim)
    guard first <= last else { throw TorchError("flatten: startDim \(startDim) comes after endDim \(endDim)") }
    let merged = s[first...last].reduce(1, *)
    return try reshape(Array(s[..<first]) + [merged] + Array(s[(last + 1)...]))
  }

  public static func cat(_ tensors: [Tensor], dim: Int = 0) throws -> Tensor {
    let handles: [sk_tensor?] = tensors.map { $0.handle }
    let result = try withExtendedLifetime(tensors) {
      try produce { sk_cat(handles, Int64(handles.count), Int64(dim), $0) }
    }
    return OperationTrace.note(.concatenate(dim: dim < 0 ? dim + result.rank : dim), tensors, result)
  }

  public static func stack(_ tensors: [Tensor], dim: Int = 0) throws -> Tensor {
    // Recorded as the unsqueezes and concatenation it is.
    if OperationTrace.isRecording, let first = tensors.first {
      let axis = dim < 0 ? dim + first.rank + 1 : dim
      return try cat(tensors.map { try $0.unsqueeze(axis) }, dim: axis)
    }
    let handles: [sk_tensor?] = tensors.map { $0.handle }
    return try withExtendedLifetime(tensors) {
      try produce { sk_stack(handles, Int64(handles.count), Int64(dim), $0) }
    }
  }

  /// Views of `size` elements along `dim` (the last may be shorter).
  public func split(size: Int, dim: Int = 0) throws -> [Tensor] {
    guard size > 0 else { throw TorchError("split: size must be positive, got \(size)") }
    let total = try dimSize(dim)
    return try stride(from: 0, to: total, by: size).map { try narrow(dim: dim, start: $0, length: Swift.min(size, total - $0)) }
  }

  /// Views with the given sizes along `dim`; the sizes must add up to the dimension.
  public func split(sizes: [Int], dim: Int = 0) throws -> [Tensor] {
    let total = try dimSize(dim)
    guard sizes.reduce(0, +) == total, sizes.allSatisfy({ $0 >= 0 }) else {
      throw TorchError("split: sizes \(sizes) do not add up to dimension \(dim) of size \(total)")
    }
    var start = 0
    return try sizes.map { length in
      defer { start += length }
      return try narrow(dim: dim, start: start, length: length)
    }
  }

  /// `chunks` nearly equal views along `dim`, as torch.chunk makes them.
  public func chunk(_ chunks: Int, dim: Int = 0) throws -> [Tensor] {
    guard chunks > 0 else { throw TorchError("chunk: number of chunks must be positive, got \(chunks)") }
    let total = try dimSize(dim)
    return try split(size: Swift.max(1, (total + chunks - 1) / chunks), dim: dim)
  }

  func wrapDim(_ dim: Int) throws -> Int {
    let r = rank
    let d = dim < 0 ? dim + r : dim
    guard d >= 0, d < Swift.max(r, 1) else {
      throw TorchError("Dimension out of range (expected to be in range of [\(-r), \(r - 1)], but got \(dim))")
    }
    return d
  }

  func dimSize(_ dim: Int) throws -> Int { shape[try wrapDim(dim)] }
}
