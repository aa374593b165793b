import Foundation

extension Synthetic {
  /// The classes of the synthetic street scenes and their Cityscapes label ids (what
  /// gtFine's `_labelIds.png` files hold): road 7, building 11, sky 23, person 24, car 26.
  public static let streetLabelIds: [(name: String, id: UInt8)] = [
    ("road", 7), ("building", 11), ("sky", 23), ("person", 24), ("car", 26),
  ]

  public struct StreetOptions: Sendable {
    public var trainSnippets = 40
    public var valSnippets = 8
    /// Frames per snippet and the annotated one (Cityscapes: 30 and the 20th, index 19).
    public var frames = 30
    public var annotatedFrame = 19
    public var width = 128
    public var height = 64
    public var seed: UInt64 = 0
    public init() {}
  }

  /// One snippet of a street seen from a panning camera: sky above a skyline of
  /// textured buildings, a textured road below the horizon, and cars and people that
  /// move along the road at their own speeds, nearer ones lower and larger, passing in
  /// front of each other. Frames and their Cityscapes label-id maps, one per frame.
  public static func streetSnippet(seed: UInt64, split: String, index: Int, frames: Int, width: Int, height: Int)
    -> (frames: [Image], labels: [Image])
  {
    var rng = Generator(seed: seed, stream: "street/\(split)", index: index)
    let (w, h) = (Double(width), Double(height))
    let horizon = h * rng.double(0.42, 0.55)
    let pan = rng.double(-1.5, 1.5)
    let sky = Background(&rng)
    let skyTint = [rng.double(90, 140), rng.double(150, 190), rng.double(210, 245)]
    // Buildings: blocks along the street's x, each with its own height and facade.
    var blocks: [(start: Double, top: Double, facade: Texture)] = []
    var x = -w - 60 * w / 128
    while x < 2 * w + 60 {
      let facade = Texture(kind: 5, tone: [rng.double(110, 200), rng.double(90, 150), rng.double(70, 120)],
                           radius: h * 0.25, &rng)
      blocks.append((x, horizon - h * rng.double(0.12, 0.4), facade))
      x += w * rng.double(0.15, 0.35)
    }
    let road = Texture(kind: 4, tone: [110, 110, 115], radius: h * 0.2, &rng)
    /// A car (wide box) or a person (tall ellipse) on the road, drawn far to near.
    struct Mover {
      let person: Bool
      let x0, speed, depth: Double
      let texture: Texture
    }
    var movers = (0..<rng.int(2...4)).map { _ -> Mover in
      let person = rng.int(0...2) == 0
      let tone = person ? [rng.double(150, 230), rng.double(60, 110), rng.double(60, 110)]
        : [rng.double(40, 90), rng.double(70, 120), rng.double(160, 230)]
      return Mover(person: person, x0: rng.double(0, w), speed: rng.double(-2.5, 2.5) * (person ? 0.4 : 1),
                   depth: rng.double(0.15, 1), texture: Texture(kind: person ? 3 : 2, tone: tone, radius: h * 0.08, &rng))
    }
    movers.sort { $0.depth < $1.depth }
    let ids = streetLabelIds.map(\.id)
    var images: [Image] = [], labels: [Image] = []
    for t in 0..<frames {
      let shift = pan * Double(t)
      var image = Image(width: width, height: height, channels: 3)
      var label = Image(width: width, height: height, channels: 1)
      for py in 0..<height {
        for px in 0..<width {
          let (sx, sy) = (Double(px) + 0.5 + shift, Double(py) + 0.5)
          var color: [Double]
          var id: UInt8
          if sy >= horizon {
            // The road's texture recedes: rows near the horizon are compressed.
            let depth = max(0.05, (sy - horizon) / (h - horizon))
            color = road.color(sx / depth * 0.5, (sy - horizon) / depth)
            id = ids[0]
          } else if let block = blocks.last(where: { $0.start <= sx }), sy >= block.top {
            color = block.facade.color(sx - block.start, sy - block.top)
            id = ids[1]
          } else {
            let smooth = sky.color(sx * 0.3, sy)
            color = (0..<3).map { 0.7 * skyTint[$0] + 0.3 * smooth[$0] }
            id = ids[2]
          }
          for mover in movers {
            let scale = h * (0.12 + 0.28 * mover.depth)
            let footY = horizon + (h - horizon) * mover.depth
            // Positions wrap around a street three frames wide, so movers keep coming.
            var centre = mover.x0 + mover.speed * Double(t)
            centre = (centre - shift + w).truncatingRemainder(dividingBy: 3 * w)
            if centre < 0 { centre += 3 * w }
            centre -= w
            let (halfWidth, bodyHeight) = mover.person ? (scale * 0.18, scale * 0.9) : (scale * 0.75, scale * 0.55)
            let (dx, dy) = (Double(px) + 0.5 - centre, footY - sy)
            guard dy >= 0, dy <= bodyHeight, abs(dx) <= halfWidth else { continue }
            if mover.person {
              let (u, v) = (dx / halfWidth, (dy - bodyHeight / 2) / (bodyHeight / 2))
              guard u * u + v * v <= 1 else { continue }
            } else if dy > bodyHeight * 0.6 && abs(dx) > halfWidth * 0.6 {
              continue  // the cabin is narrower than the body
            }
            color = mover.texture.color(dx, dy)
            id = ids[mover.person ? 3 : 4]
          }
          label[px, py, 0] = id
          for c in 0..<3 { image[px, py, c] = clamp(color[c] + rng.double(-5, 5)) }
        }
      }
      images.append(image)
      labels.append(label)
    }
    return (images, labels)
  }

  /// Writes street snippets in Cityscapes' layout under `root`, city "synth":
  /// leftImg8bit_sequence/<split>/synth/synth_<snippet>_<frame>_leftImg8bit.png for every
  /// frame, and for the annotated frame leftImg8bit/<split>/synth/…_leftImg8bit.png and
  /// gtFine/<split>/synth/…_gtFine_labelIds.png (Cityscapes label ids).
  public static func writeStreet(to root: URL, options: StreetOptions = StreetOptions()) throws {
    guard (1...1000).contains(options.frames), (0..<options.frames).contains(options.annotatedFrame) else {
      throw DataError("street snippets of \(options.frames) frames annotated at index \(options.annotatedFrame): need 1…1000 frames and an index among them")
    }
    let jobs = [("train", options.trainSnippets), ("val", options.valSnippets)].flatMap { split, count in
      (0..<count).map { (split: split, index: $0) }
    }
    let folders = ["train", "val"].flatMap { split in
      ["leftImg8bit_sequence", "leftImg8bit", "gtFine"].map { root.appendingPathComponent("\($0)/\(split)/synth") }
    }
    try makeFolders(folders)
    try parallel(jobs.count) { i in
      let job = jobs[i]
      let snippet = streetSnippet(seed: options.seed, split: job.split, index: job.index, frames: options.frames,
                                  width: options.width, height: options.height)
      for (t, frame) in snippet.frames.enumerated() {
        let stem = String(format: "synth_%06d_%06d", job.index, t)
        try ImageIO.writePNG(frame, to: root.appendingPathComponent("leftImg8bit_sequence/\(job.split)/synth/\(stem)_leftImg8bit.png"))
        guard t == options.annotatedFrame else { continue }
        try ImageIO.writePNG(frame, to: root.appendingPathComponent("leftImg8bit/\(job.split)/synth/\(stem)_leftImg8bit.png"))
        try ImageIO.writePNG(snippet.labels[t], to: root.appendingPathComponent("gtFine/\(job.split)/synth/\(stem)_gtFine_labelIds.png"))
      }
    }
  }
}

extension Synthetic.Texture {
  /// A texture whose first colour varies around `tone`, the second kept apart from it.
  init(kind: Int, tone: [Double], radius: Double, _ rng: inout Synthetic.Generator) {
    self.kind = kind
    a = tone.map { max(20, min(235, $0 + rng.double(-20, 20))) }
    let base = rng.color()
    b = zip(a, base).map { abs($0 - $1) < 60 ? ($0 < 128 ? $0 + 90 : $0 - 90) : $1 }
    period = max(4, radius * rng.double(0.3, 0.5))
  }
}
