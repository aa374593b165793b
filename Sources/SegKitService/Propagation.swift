import Foundation
import SegKitData
import SegKitInference

/// Propagating a session's masks with XMem, frame by frame on the inference thread: from
/// frame `from` (its mask: the person's, else the one propagated before) forward or
/// backward to the end, a fresh memory each time. A frame the person annotated on the
/// way is given to XMem as a correction (its objects reset to it). Each frame's mask is
/// written to the session as it is produced and reported to `progress`.
struct MaskPropagation {
  enum Direction: String { case forward, backward }

  struct Step: Encodable {
    let frame: Int
    let done: Int
    let total: Int
    /// Pixels of each object id in the frame's mask.
    let objects: [String: Int]
  }

  let xmem: XMemSegmenters
  let worker: InferenceWorker

  /// The frames visited, in order, from `from` in `direction`.
  static func order(from: Int, direction: Direction, count: Int) -> [Int] {
    direction == .forward ? Array(from..<count) : Array((0...from).reversed())
  }

  func run(session: VideoSession, store: SessionStore, from: Int, direction: Direction,
           job: VideoSession.Propagation, progress: (Step) async throws -> Void) async throws {
    let frames = Self.order(from: from, direction: direction, count: session.frameCount)
    let (start, annotated) = try store.with(session.id) { (try $0.startingMask(from), $0.annotated) }
    guard let start else {
      throw ServiceError.unprocessable("frame \(from) has no mask yet: PUT /v1/sessions/\(session.id)/masks/\(from) first")
    }
    let segmenter = try xmem.make(sequence: session.id)
    for (i, t) in frames.enumerated() {
      if job.cancelled { return }
      let frameURL = session.frameURL(t)
      let correction = i > 0 && annotated.contains(t) ? try store.with(session.id) { try $0.startingMask(t) } : nil
      let mask = try await worker.run {
        let frame = try ImageIO.read(frameURL)
        if i == 0 { return try segmenter.start(firstFrame: frame, mask: start) }
        if let correction { return try segmenter.next(frame, mask: correction) }
        return try segmenter.next(frame)
      }
      if job.cancelled { return }
      try ImageIO.writePNG(mask, to: session.maskURL(t), palette: .pascal)
      _ = try store.with(session.id) { $0.segmented.insert(t) }
      var objects: [String: Int] = [:]
      for value in mask.pixels where value != 0 { objects[String(value), default: 0] += 1 }
      try await progress(Step(frame: t, done: i + 1, total: frames.count, objects: objects))
    }
  }
}
