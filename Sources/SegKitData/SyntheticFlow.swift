import Foundation

extension Synthetic {
  /// A frame pair with its exact optical flow, in the manner of FlyingChairs: a
  /// textured background under a small similarity motion (rotation, scale, shift about
  /// the centre) and two to four textured shapes, each with its own motion, drawn over
  /// it in order. Both frames are rendered from the same surfaces, so the flow from
  /// the first frame to the second is known everywhere, occluded points included:
  /// first(x) shows the surface point that second shows at x + flow(x). Deterministic
  /// for (seed, index); for training and checking flow networks.
  public static func flowPair(seed: UInt64, index: Int, width: Int, height: Int, maximumShift: Double = 8) throws
    -> (first: Image, second: Image, flow: FlowField)
  {
    guard (8...4096).contains(width), (8...4096).contains(height), maximumShift >= 0, maximumShift <= 256 else {
      throw DataError("a synthetic flow pair of \(width)×\(height) with shifts up to \(maximumShift) px: sides must be in 8…4096, shifts in 0…256")
    }
    var rng = Generator(seed: seed, stream: "flow", index: index)
    let background = Background(&rng)
    let backgroundTexture = Texture(kind: rng.int(1...5), radius: Double(min(width, height)) * 0.2, &rng)
    let centre = (Double(width) / 2, Double(height) / 2)
    /// A similarity motion about a point: x ↦ c + s·R(θ)(x − c) + t.
    struct Motion {
      let centre: (Double, Double), scale, angle: Double, shift: (Double, Double)
      func apply(_ x: Double, _ y: Double) -> (Double, Double) {
        let (dx, dy) = (x - centre.0, y - centre.1)
        let (c, s) = (cos(angle) * scale, sin(angle) * scale)
        return (centre.0 + c * dx - s * dy + shift.0, centre.1 + s * dx + c * dy + shift.1)
      }
      func invert(_ x: Double, _ y: Double) -> (Double, Double) {
        let (dx, dy) = (x - centre.0 - shift.0, y - centre.1 - shift.1)
        let (c, s) = (cos(angle) / scale, sin(angle) / scale)
        return (centre.0 + c * dx + s * dy, centre.1 - s * dx + c * dy)
      }
    }
    func motion(about point: (Double, Double), _ rng: inout Generator, strength: Double) -> Motion {
      Motion(centre: point, scale: 1 + rng.double(-0.04, 0.04) * strength, angle: rng.double(-0.06, 0.06) * strength,
             shift: (rng.double(-maximumShift, maximumShift) * strength, rng.double(-maximumShift, maximumShift) * strength))
    }
    let backgroundMotion = motion(about: centre, &rng, strength: 0.5)
    let shapes: [(shape: Shape, motion: Motion)] = (0..<rng.int(2...4)).map { _ in
      let radius = Double(min(width, height)) * rng.double(0.12, 0.28)
      let kind = rng.int(1...5)
      let shape = Shape(kind: kind, cx: rng.double(0, Double(width)), cy: rng.double(0, Double(height)), radius: radius,
                        angle: rng.double(0, 2 * .pi), texture: Texture(kind: rng.int(1...5), radius: radius, &rng))
      return (shape, motion(about: (shape.cx, shape.cy), &rng, strength: 1))
    }

    /// The topmost surface at pixel (x, y) of the first or the second frame: its colour
    /// (looked up at its point in the first frame's coordinates) and its motion.
    func surface(_ x: Double, _ y: Double, second: Bool) -> (color: [Double], motion: Motion) {
      for (shape, motion) in shapes.reversed() {
        let (px, py) = second ? motion.invert(x, y) : (x, y)
        let (u, v) = shape.local(px, py)
        if shape.contains(u, v) { return (shape.texture.color(u * shape.radius, v * shape.radius), motion) }
      }
      let (px, py) = second ? backgroundMotion.invert(x, y) : (x, y)
      let pattern = backgroundTexture.color(px, py), smooth = background.color(px, py)
      return ((0..<3).map { 0.5 * pattern[$0] + 0.5 * smooth[$0] }, backgroundMotion)
    }

    var first = [UInt8](repeating: 0, count: width * height * 3), second = first
    var flow = [Float](repeating: 0, count: width * height * 2)
    for y in 0..<height {
      for x in 0..<width {
        let (cx, cy) = (Double(x), Double(y))
        let a = surface(cx, cy, second: false), b = surface(cx, cy, second: true)
        let pixel = (y * width + x) * 3
        for c in 0..<3 {
          first[pixel + c] = clamp(a.color[c])
          second[pixel + c] = clamp(b.color[c])
        }
        // The first frame's point at (x, y) moves with the topmost surface there.
        let moved = a.motion.apply(cx, cy)
        flow[y * width + x] = Float(moved.0 - cx)
        flow[width * height + y * width + x] = Float(moved.1 - cy)
      }
    }
    return (try Image(width: width, height: height, channels: 3, pixels: first),
            try Image(width: width, height: height, channels: 3, pixels: second),
            try FlowField(width: width, height: height, values: flow))
  }
}
