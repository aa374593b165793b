import Foundation
import SegKitData
import SegKitInference

/// The one thread that runs the service's libtorch work, in arrival order: image
/// requests, and the frames of video propagations one at a time, so that a long
/// propagation does not hold images back. Micro-batching happens here: an image whose
/// model runs one plain pass waits up to `maxDelay` for others of the same model and
/// size, and up to `maxBatch` of them run as one batch.
final class InferenceWorker: @unchecked Sendable {
  private enum Work {
    /// A normalised [1, 3, H, W] input for `model`; `key` says which others it may batch with.
    case image(model: ServedModel, input: Tensor, key: String)
    case closure(() throws -> Image)
  }

  private struct Job {
    let work: Work
    let arrival: Date
    let deadline: Date
    let complete: (Result<Image, Error>) -> Void
    var batchKey: String? { if case .image(_, _, let key) = work { return key } else { return nil } }
  }

  private let condition = NSCondition()
  private var jobs: [Job] = []
  private let maxBatch: Int
  private let maxDelay: TimeInterval
  private let maxQueue: Int
  private let timeout: TimeInterval
  private let metrics: ServiceMetrics

  init(settings: ServiceSettings, metrics: ServiceMetrics) {
    maxBatch = settings.maxBatch
    maxDelay = settings.maxDelayMs / 1000
    maxQueue = settings.maxQueue
    timeout = settings.requestTimeout
    self.metrics = metrics
    let thread = Thread { [unowned self] in self.loop() }
    thread.name = "segkit-inference"
    thread.stackSize = 16 << 20
    thread.start()
  }

  /// The labels of `image` by `model` under `settings`, batched with others where it can be.
  func labels(_ image: Image, model: ServedModel, settings: InferenceSettings) async throws -> Image {
    guard model.batches(settings) else { return try await run { try model.labels(image, settings: settings) } }
    let input = try model.input(image)
    let key = "\(model.name)|\(input.shape[2])x\(input.shape[3])"
    return try await submit(.image(model: model, input: input, key: key), queued: true)
  }

  /// Runs `body` on the inference thread.
  func run(_ body: @escaping () throws -> Image) async throws -> Image {
    try await submit(.closure(body), queued: false)
  }

  /// `queued`: an image request, refused when `maxQueue` are already waiting.
  private func submit(_ work: Work, queued: Bool) async throws -> Image {
    try await withCheckedThrowingContinuation { continuation in
      condition.lock()
      defer { condition.unlock() }
      if queued && jobs.count >= maxQueue {
        continuation.resume(throwing: ServiceError(.serviceUnavailable, "\(jobs.count) images are already waiting (--max-queue \(maxQueue)); try again shortly", cap: "max-queue"))
        return
      }
      let now = Date()
      jobs.append(Job(work: work, arrival: now, deadline: now.addingTimeInterval(queued ? timeout : .infinity),
                      complete: { continuation.resume(with: $0) }))
      metrics.queue(length: jobs.count)
      condition.signal()
    }
  }

  private func loop() {
    while true {
      let batch = nextBatch()
      execute(batch)
    }
  }

  /// The next job, with the jobs that may share its batch (waiting up to `maxDelay` for more).
  private func nextBatch() -> [Job] {
    condition.lock()
    defer {
      metrics.queue(length: jobs.count)
      condition.unlock()
    }
    while jobs.isEmpty { condition.wait() }
    var batch = [jobs.removeFirst()]
    guard let key = batch[0].batchKey, maxBatch > 1 else { return batch }
    let until = batch[0].arrival.addingTimeInterval(maxDelay)
    while batch.count < maxBatch {
      while batch.count < maxBatch, let i = jobs.firstIndex(where: { $0.batchKey == key }) { batch.append(jobs.remove(at: i)) }
      if batch.count >= maxBatch || Date() >= until { break }
      _ = condition.wait(until: until)
    }
    return batch
  }

  private func execute(_ batch: [Job]) {
    let now = Date()
    let live = batch.filter { job in
      guard now > job.deadline else { return true }
      job.complete(.failure(ServiceError(.serviceUnavailable, "the request waited past --request-timeout (\(timeout) s)", cap: "request-timeout")))
      return false
    }
    guard let first = live.first else { return }
    switch first.work {
    case .closure(let body):
      first.complete(Result { try body() })
    case .image(let model, _, _):
      let inputs = live.compactMap { job -> Tensor? in if case .image(_, let input, _) = job.work { return input } else { return nil } }
      metrics.batch(size: inputs.count)
      do {
        let labels = try Torch.withInferenceMode { try model.labels(batch: inputs) }
        for (job, label) in zip(live, labels) { job.complete(.success(label)) }
      } catch {
        for job in live { job.complete(.failure(error)) }
      }
    }
  }
}
