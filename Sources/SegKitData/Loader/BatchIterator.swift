import Foundation

/// Produces a loader's batches in order, `workers` at a time, up to `prefetch` ahead.
///
/// Workers are Swift tasks that load and augment into plain buffers; `next()` waits for
/// the batch in order and builds its tensors on the caller's thread (libtorch's grad mode
/// is thread-local and `Tensor` is not thread-safe). Call `next()` from one thread (a
/// synchronous training loop); it blocks while the next batch is being made.
public final class BatchIterator {
  public let loader: DataLoader
  /// The position of the next batch `next()` returns: save it to resume there.
  public private(set) var position: LoaderPosition
  private let pipeline: Pipeline
  private var delivered = 0
  private let count: Int

  init(loader: DataLoader, start: LoaderPosition, count: Int) {
    self.loader = loader
    self.position = start
    self.count = count
    pipeline = Pipeline(loader: loader, start: start, count: count)
    if loader.options.workers > 0 {
      for _ in 0..<loader.options.workers {
        Task.detached { [pipeline] in await pipeline.work() }
      }
    }
  }

  deinit { pipeline.close() }

  /// The next non-empty batch, or nil at the end. A batch that failed rethrows its error
  /// (under `BadSamplePolicy.fail`), after which the iterator is finished.
  public func next() throws -> Batch? {
    while delivered < count {
      let index = delivered
      let result = loader.options.workers > 0 ? pipeline.wait(for: index) : pipeline.produce(index)
      delivered += 1
      let next = loader.position(pipeline.start, plus: delivered)
      position = next
      let host: HostBatch
      do { host = try result.get() } catch {
        delivered = count
        pipeline.close()
        throw error
      }
      if host.names.isEmpty { continue }  // every sample skipped
      return try host.tensors(next: next)
    }
    pipeline.close()
    return nil
  }
}

/// The state shared by the workers and the consumer, under one condition lock.
private final class Pipeline: @unchecked Sendable {
  let loader: DataLoader
  let start: LoaderPosition
  let count: Int
  private let condition = NSCondition()
  private var dispatched = 0
  private var consumed = 0
  private var closed = false
  private var results: [Int: Result<HostBatch, Error>] = [:]
  private var waiting: [CheckedContinuation<Int?, Never>] = []
  /// The last epoch's order, so workers do not redraw the permutation for every batch.
  private var cachedOrder: (epoch: Int, order: [Int])?

  init(loader: DataLoader, start: LoaderPosition, count: Int) {
    self.loader = loader
    self.start = start
    self.count = count
  }

  /// A worker's loop: claim the next batch index within the prefetch window, produce it, deliver it.
  func work() async {
    while let index = await claim() { deliver(index, produce(index)) }
  }

  private func deliver(_ index: Int, _ result: Result<HostBatch, Error>) {
    condition.lock()
    results[index] = result
    condition.broadcast()
    condition.unlock()
  }

  func produce(_ index: Int) -> Result<HostBatch, Error> {
    let position = loader.position(start, plus: index)
    return Result { try loader.produce(at: position, order: order(epoch: position.epoch)) }
  }

  private func order(epoch: Int) -> [Int] {
    condition.lock()
    if let cached = cachedOrder, cached.epoch == epoch {
      condition.unlock()
      return cached.order
    }
    condition.unlock()
    let order = loader.order(epoch: epoch)
    condition.lock()
    cachedOrder = (epoch, order)
    condition.unlock()
    return order
  }

  private func claim() async -> Int? {
    await withCheckedContinuation { continuation in
      condition.lock()
      waiting.append(continuation)
      dispatchLocked()
      condition.unlock()
    }
  }

  /// Hands batch indices to waiting workers while the window allows; ends them when done.
  private func dispatchLocked() {
    let window = max(loader.options.prefetch, loader.options.workers, 1)
    while !waiting.isEmpty {
      if closed || dispatched >= count {
        waiting.forEach { $0.resume(returning: nil) }
        waiting.removeAll()
        return
      }
      guard dispatched < consumed + window else { return }
      waiting.removeFirst().resume(returning: dispatched)
      dispatched += 1
    }
  }

  /// Blocks until batch `index` is ready, then frees its place in the window.
  func wait(for index: Int) -> Result<HostBatch, Error> {
    condition.lock()
    defer { condition.unlock() }
    while results[index] == nil { condition.wait() }
    let result = results.removeValue(forKey: index)!
    consumed = index + 1
    dispatchLocked()
    return result
  }

  func close() {
    condition.lock()
    closed = true
    dispatchLocked()
    condition.unlock()
  }
}
