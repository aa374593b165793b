import Foundation

extension Synthetic {
  /// What moves in a synthetic video sequence: the background, its pan (the camera's
  /// motion, in pixels per frame) and the blobs in depth order (the last on top). It
  /// is drawn first from a sequence's generator, so frames and flows agree.
  struct VideoMotion {
    let background: Background
    let blobs: [Blob]
    let pan: (Double, Double)
    let width, height: Int

    init(_ rng: inout Generator, frames: Int, width: Int, height: Int, objects: Int?) {
      background = Background(&rng)
      let count = objects ?? rng.int(1...3)
      let (w, h) = (Double(width), Double(height))
      let scale = min(w, h)
      let duration = Double(max(frames - 1, 1))
      blobs = (0..<count).map { _ -> Blob in
        // Every path crosses the middle of the frame at some time, so objects meet and occlude.
        let meet = (rng.double(0.35, 0.65) * w, rng.double(0.35, 0.65) * h)
        let start = (rng.double(0.15, 0.85) * w, rng.double(0.15, 0.85) * h)
        let when = rng.double(0.3, 0.7) * duration
        let radius = scale * rng.double(0.12, 0.22)
        return Blob(
          start: start, velocity: ((meet.0 - start.0) / when, (meet.1 - start.1) / when),
          radius: radius, angle: rng.double(0, 2 * .pi), spin: rng.double(-0.08, 0.08),
          wobble: (0..<3).map { _ in (rng.double(0.05, 0.18), rng.double(0, 2 * .pi), rng.double(-0.3, 0.3)) },
          texture: Texture(kind: rng.int(1...5), radius: radius, &rng))
      }
      pan = (rng.double(-0.6, 0.6), rng.double(-0.4, 0.4))
      (self.width, self.height) = (width, height)
    }

    func placed(at t: Int) -> [Blob.Placed] {
      blobs.map { $0.placed(at: Double(t), width: Double(width), height: Double(height)) }
    }

    /// The exact flow from frame `t` to frame `u`, SegKit's convention (frame t at x is
    /// frame u at x + F(x)), at pixel centres: each pixel moves with the topmost blob
    /// covering it in frame t (its material point, `Blob.Placed.local` / `position`),
    /// else with the background, which the camera's pan moves by −pan per frame.
    func flow(from t: Int, to u: Int) -> FlowField {
      let (from, to) = (placed(at: t), placed(at: u))
      let plane = width * height
      var values = [Float](repeating: 0, count: 2 * plane)
      let background = (-pan.0 * Double(u - t), -pan.1 * Double(u - t))
      for y in 0..<height {
        for x in 0..<width {
          let (px, py) = (Double(x) + 0.5, Double(y) + 0.5)
          var motion = background
          for (a, b) in zip(from, to).reversed() {
            guard let local = a.local(px, py) else { continue }
            let moved = b.position(local.0, local.1)
            motion = (moved.0 - px, moved.1 - py)
            break
          }
          values[y * width + x] = Float(motion.0)
          values[plane + y * width + x] = Float(motion.1)
        }
      }
      // The counts match by construction.
      return try! FlowField(width: width, height: height, values: values)
    }
  }

  /// The exact flows of the sequence `videoSequence` draws for the same arguments (its
  /// camouflage does not change the motion): `forward[t]` from frame t to t+1 and
  /// `backward[t - 1]` from frame t to t−1, for t in 0..<frames−1 and 1..<frames.
  public static func videoFlows(seed: UInt64, split: String, index: Int, frames: Int, width: Int, height: Int,
                                objects: Int?) -> (forward: [FlowField], backward: [FlowField]) {
    var rng = Generator(seed: seed, stream: "video/\(split)", index: index)
    let motion = VideoMotion(&rng, frames: frames, width: width, height: height, objects: objects)
    let pairs = 0..<max(frames - 1, 0)
    return (pairs.map { motion.flow(from: $0, to: $0 + 1) }, pairs.map { motion.flow(from: $0 + 1, to: $0) })
  }

  /// The folders of a synthetic DAVIS root's exact flows: `forward` holds
  /// <sequence>/NNNNN.flo from frame N to N+1, `backward` <sequence>/NNNNN.flo from frame N to N−1.
  public static func flowFolders(of root: URL) -> (forward: URL, backward: URL) {
    (root.appendingPathComponent("Flow/480p"), root.appendingPathComponent("BackwardFlow/480p"))
  }

  static func writeFlows(_ flows: (forward: [FlowField], backward: [FlowField]), sequence: String, under root: URL) throws {
    let folders = flowFolders(of: root)
    let (forward, backward) = (folders.forward.appendingPathComponent(sequence), folders.backward.appendingPathComponent(sequence))
    try makeFolders([forward, backward])
    for (t, flow) in flows.forward.enumerated() {
      try FlowFile.write(flow, to: forward.appendingPathComponent(String(format: "%05d.flo", t)))
    }
    for (t, flow) in flows.backward.enumerated() {
      try FlowFile.write(flow, to: backward.appendingPathComponent(String(format: "%05d.flo", t + 1)))
    }
  }
}
