import Foundation

/// One of XMem's key–value stores (its `KeyValueMemoryStore`): working memory or
/// long-term memory. Keys (with shrinkage, selection and usage counts) are shared by all
/// objects, [1, C, N]; values are kept per object group, [objects in group, C^v, N_g].
/// A group is the objects first given on the same frame: a group that starts later has
/// values for the newest N_g keys only.
final class XMemMemoryStore {
  let countsUsage: Bool
  private(set) var key: Tensor?
  private(set) var shrinkage: Tensor?
  private(set) var selection: Tensor?
  private(set) var values: [Tensor] = []
  /// Each group's objects, as 0-based indices into the objects' order.
  private(set) var groups: [[Int]] = []
  private var useCount: Tensor?
  private var lifeCount: Tensor?

  init(countsUsage: Bool) { self.countsUsage = countsUsage }

  var size: Int { key?.shape[2] ?? 0 }
  var isEngaged: Bool { key != nil }
  var groupCount: Int { values.count }
  func valueSize(group: Int) -> Int { values[group].shape[2] }

  /// Appends keys [1, C, n]. With `objects` (working memory), `value` is every object's
  /// values [O, C^v, n] and `objects` their 1-based ids in order; objects not yet in a
  /// group form a new one. Without (long-term memory), `groupValues` holds each existing
  /// or new group's values, nil for a group that gets none.
  func add(key: Tensor, shrinkage: Tensor?, selection: Tensor?, value: Tensor, objects: [Int]) throws {
    try appendKeys(key, shrinkage: shrinkage, selection: selection)
    var remaining = objects.map { $0 - 1 }
    for (index, group) in groups.enumerated() {
      remaining.removeAll { group.contains($0) }
      values[index] = try Tensor.cat([values[index], value.indexSelect(dim: 0, index: Self.index(group, on: value))], dim: 2)
    }
    if !remaining.isEmpty {
      guard remaining == remaining.sorted(), (groups.last?.last ?? -1) < remaining[0] else {
        throw InferenceError("XMem memory: objects must be added in increasing order, got \(objects)")
      }
      values.append(try value.indexSelect(dim: 0, index: Self.index(remaining, on: value)))
      groups.append(remaining)
    }
  }

  func add(key: Tensor, shrinkage: Tensor?, groupValues: [Tensor?]) throws {
    try appendKeys(key, shrinkage: shrinkage, selection: nil)
    for (index, value) in groupValues.enumerated() {
      guard let value else { continue }
      if index < values.count {
        values[index] = try Tensor.cat([values[index], value], dim: 2)
      } else {
        values.append(value)
      }
    }
  }

  private func appendKeys(_ newKey: Tensor, shrinkage newShrinkage: Tensor?, selection newSelection: Tensor?) throws {
    let n = newKey.shape[2]
    func appended(_ old: Tensor?, _ new: Tensor?) throws -> Tensor? {
      guard let new else { return old }
      guard let old else { return new }
      return try Tensor.cat([old, new], dim: 2)
    }
    if key == nil {
      (shrinkage, selection) = (newShrinkage, newSelection)
    } else {
      shrinkage = try appended(shrinkage, newShrinkage)
      selection = try appended(selection, newSelection)
    }
    key = try appended(key, newKey)
    if countsUsage {
      useCount = try appended(useCount, Tensor.zeros([1, 1, n], device: newKey.device))
      // Born with a tiny life so that usage = count / life is defined at once.
      lifeCount = try appended(lifeCount, Tensor.full([1, 1, n], 1e-7, device: newKey.device))
    }
  }

  private static func index(_ positions: [Int], on tensor: Tensor) throws -> Tensor {
    try Tensor(positions.map(Int64.init)).to(tensor.device)
  }

  /// Adds one reading's affinity mass per element ([N]) and ages every element by one.
  func updateUsage(_ usage: Tensor) throws {
    guard countsUsage, let useCount, let lifeCount else { return }
    try useCount += usage.view(useCount.shape)
    try lifeCount += 1
  }

  /// Usage normalised by life: how much each element has been read per reading.
  func usage() throws -> Tensor {
    guard countsUsage, let useCount, let lifeCount else { throw InferenceError("XMem memory: usage was not counted") }
    return try useCount / lifeCount
  }

  /// Keys, shrinkage, selection and usage of elements start..<end (end ≤ 0 counts from
  /// the end, 0 meaning to the end, as XMem's slicing does).
  func sliced(start: Int, end: Int) throws -> (key: Tensor, shrinkage: Tensor?, selection: Tensor?, usage: Tensor) {
    let stop = end == 0 ? Int.max : end
    func cut(_ t: Tensor?) throws -> Tensor? { try t?.slice(dim: 2, start: start, end: stop) }
    return (try cut(key)!, try cut(shrinkage), try cut(selection), try cut(usage())!)
  }

  /// Removes elements start..<end (end as in `sliced`), from the keys and from the
  /// values of groups holding at least `minimumSize` elements (smaller groups were not
  /// consolidated and keep theirs).
  func sieve(start: Int, end: Int, minimumSize: Int) throws {
    func kept(_ t: Tensor?) throws -> Tensor? {
      guard let t else { return nil }
      if end == 0 { return try t.slice(dim: 2, start: 0, end: start) }
      return try Tensor.cat([t.slice(dim: 2, start: 0, end: start), t.slice(dim: 2, start: end)], dim: 2)
    }
    key = try kept(key)
    shrinkage = try kept(shrinkage)
    selection = try kept(selection)
    useCount = try kept(useCount)
    lifeCount = try kept(lifeCount)
    for index in values.indices where values[index].shape[2] >= minimumSize {
      values[index] = try kept(values[index])!
    }
  }

  /// Drops the least-used elements so that at most `maximumSize` remain (elements tied
  /// with the last one dropped go too, as in XMem).
  func removeObsolete(keeping maximumSize: Int) throws {
    guard values.count <= 1 else {
      throw InferenceError("""
        XMem memory: long-term memory is full and objects started on different frames; XMem cannot remove \
        elements then. Raise --max-long-term-elements or give every object on the first frame
        """)
    }
    let usage = try self.usage().flatten()
    let threshold = try usage.topk(size - maximumSize, dim: 0, largest: false).values.toArray(Float.self).last!
    let survivors = try usage.toArray(Float.self).enumerated().filter { $0.element > threshold }.map { Int64($0.offset) }
    let index = try Tensor(survivors).to(usage.device)
    func kept(_ t: Tensor?) throws -> Tensor? { try t?.indexSelect(dim: 2, index: index) }
    key = try kept(key)
    shrinkage = try kept(shrinkage)
    selection = try kept(selection)
    useCount = try kept(useCount)
    lifeCount = try kept(lifeCount)
    values = try values.map { try kept($0)! }
  }
}
