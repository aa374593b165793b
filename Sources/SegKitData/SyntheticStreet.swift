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
    /// Frames per snippet (Cityscapes: 30). Every frame is labelled; the Cityscapes
    /// layout's annotated frame (leftImg8bit/) is index `annotatedFrame` (the 20th).
    public var frames = 30
    public var annotatedFrame = 19
    public var width = 128
    public var height = 64
    public var seed: UInt64 = 0
    public init() {}
  }

  /// One street snippet: its frames, their Cityscapes label-id maps, and the exact flow
  /// from each frame to the next (`flows[t]`: frame t at x is frame t+1 at x + F(x),
  /// `segkit flow`'s convention), one fewer than frames.
  public struct StreetSnippet {
    public var frames: [Image] = []
    public var labels: [Image] = []
    public var flows: [FlowField] = []
    /// The camera's horizontal offset at each frame, and each mover's centre on the
    /// screen before wrapping (pixels): the motion the flows are drawn from.
    public var pan: [Double] = []
    public var moverCentres: [[Double]] = []
  }

  /// A speed at each of `steps` frame steps, drawn as episodes of 3 to 10 frames: stop,
  /// go at `cruise`, accelerate to 2–3× it, or a fast turn of up to `turn`. Each episode
  /// ramps from the speed before it, so speeds change smoothly but often: how far a key
  /// frame's content has moved depends on when, not only on how long ago.
  static func speedEpisodes(steps: Int, cruise: Double, turn: Double, _ rng: inout Generator) -> [Double] {
    var speeds: [Double] = [], speed = rng.int(0...1) == 0 ? 0 : cruise
    while speeds.count < steps {
      let length = rng.int(3...10)
      let target: Double
      switch rng.int(0...3) {
      case 0: target = 0
      case 1: target = cruise
      case 2: target = cruise * rng.double(2, 3)
      default: target = turn * rng.double(0.6, 1) * (rng.int(0...1) == 0 ? 1 : -1)
      }
      let ramp = min(length, rng.int(1...3))
      for step in 0..<length {
        let share = min(1, Double(step + 1) / Double(ramp))
        speeds.append(speed + (target - speed) * share)
      }
      speed = target
    }
    return Array(speeds.prefix(steps))
  }

  /// One snippet of a street seen from a camera that pans, stops, goes, speeds up and
  /// turns: sky above a skyline of textured buildings, a textured road below the
  /// horizon, and cars and people that walk, drive, stop and start along the road at
  /// their own speeds, nearer ones lower and larger, passing in front of each other.
  /// Speeds scale with the width (the 128-pixel street's are the unit).
  public static func streetSnippet(seed: UInt64, split: String, index: Int, frames: Int, width: Int, height: Int)
    throws -> StreetSnippet
  {
    var rng = Generator(seed: seed, stream: "street/\(split)", index: index)
    let (w, h) = (Double(width), Double(height))
    let unit = w / 128
    let horizon = h * rng.double(0.42, 0.55)
    let cruise = rng.double(-1.5, 1.5) * unit
    let panSpeeds = speedEpisodes(steps: frames, cruise: cruise, turn: 4 * unit, &rng)
    let sky = Background(&rng)
    let skyTint = [rng.double(90, 140), rng.double(150, 190), rng.double(210, 245)]
    // Buildings: blocks along the street's x, each with its own height and facade.
    var blocks: [(start: Double, top: Double, facade: Texture)] = []
    var x = -w - 60 * unit
    let reach = panSpeeds.reduce(0) { $0 + abs($1) } + w
    while x < w + reach + 60 * unit {
      let facade = Texture(kind: 5, tone: [rng.double(110, 200), rng.double(90, 150), rng.double(70, 120)],
                           radius: h * 0.25, &rng)
      blocks.append((x, horizon - h * rng.double(0.12, 0.4), facade))
      x += w * rng.double(0.15, 0.35)
    }
    // Leftward pans need blocks before the first one too.
    var left = -w - 60 * unit
    while left > -reach - 60 * unit {
      left -= w * rng.double(0.15, 0.35)
      let facade = Texture(kind: 5, tone: [rng.double(110, 200), rng.double(90, 150), rng.double(70, 120)],
                           radius: h * 0.25, &rng)
      blocks.insert((left, horizon - h * rng.double(0.12, 0.4), facade), at: 0)
    }
    let road = Texture(kind: 4, tone: [110, 110, 115], radius: h * 0.2, &rng)
    /// A car (wide box) or a person (tall ellipse) on the road, drawn far to near.
    struct Mover {
      let person: Bool
      let x0, depth: Double
      let speeds: [Double]
      let texture: Texture
    }
    var movers = (0..<rng.int(2...4)).map { _ -> Mover in
      let person = rng.int(0...2) == 0
      let tone = person ? [rng.double(150, 230), rng.double(60, 110), rng.double(60, 110)]
        : [rng.double(40, 90), rng.double(70, 120), rng.double(160, 230)]
      let speed = rng.double(-2.5, 2.5) * (person ? 0.4 : 1) * unit
      return Mover(person: person, x0: rng.double(0, w), depth: rng.double(0.15, 1),
                   speeds: speedEpisodes(steps: frames, cruise: speed, turn: speed * 2, &rng),
                   texture: Texture(kind: person ? 3 : 2, tone: tone, radius: h * 0.08, &rng))
    }
    movers.sort { $0.depth < $1.depth }
    // Positions at each frame: the camera's offset and each mover's screen centre.
    var snippet = StreetSnippet()
    snippet.pan = [0]
    for t in 0..<frames - 1 { snippet.pan.append(snippet.pan[t] + panSpeeds[t]) }
    snippet.moverCentres = movers.map { mover in
      var centres = [mover.x0]
      for t in 0..<frames - 1 { centres.append(centres[t] + mover.speeds[t] - panSpeeds[t]) }
      return centres
    }
    let ids = streetLabelIds.map(\.id)
    for t in 0..<frames {
      let shift = snippet.pan[t]
      var image = Image(width: width, height: height, channels: 3)
      var label = Image(width: width, height: height, channels: 1)
      // Which mover (index) covers each pixel, -1 for the street behind: the flow's source.
      var owner = [Int](repeating: -1, count: width * height)
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
          for (m, mover) in movers.enumerated() {
            let scale = h * (0.12 + 0.28 * mover.depth)
            let footY = horizon + (h - horizon) * mover.depth
            let centre = wrappedCentre(snippet.moverCentres[m][t], width: w)
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
            owner[py * width + px] = m
          }
          label[px, py, 0] = id
          for c in 0..<3 { image[px, py, c] = clamp(color[c] + rng.double(-5, 5)) }
        }
      }
      snippet.frames.append(image)
      snippet.labels.append(label)
      guard t + 1 < frames else { continue }
      // The street moves by the camera's step; a mover's pixels by its own step on the
      // screen (unwrapped: a mover leaving one side is not teleported by its flow).
      var values = [Float](repeating: 0, count: 2 * width * height)
      let street = Float(-(snippet.pan[t + 1] - shift))
      for (i, m) in owner.enumerated() {
        values[i] = m < 0 ? street : Float(snippet.moverCentres[m][t + 1] - snippet.moverCentres[m][t])
      }
      snippet.flows.append(try FlowField(width: width, height: height, values: values))
    }
    return snippet
  }

  /// A mover's centre on the screen: positions wrap around a street three frames wide,
  /// so movers keep coming.
  static func wrappedCentre(_ unwrapped: Double, width w: Double) -> Double {
    var centre = (unwrapped + w).truncatingRemainder(dividingBy: 3 * w)
    if centre < 0 { centre += 3 * w }
    return centre - w
  }

  /// Writes street snippets in Cityscapes' layout under `root`, city "synth": every
  /// frame in leftImg8bit_sequence/<split>/synth/synth_<snippet>_<frame>_leftImg8bit.png
  /// with its labels in gtFine/<split>/synth/…_gtFine_labelIds.png (Cityscapes label
  /// ids) and its exact flow to the next frame in flow/<split>/synth/…_flow.flo; the
  /// annotated frame also in leftImg8bit/<split>/synth/ (what semantic training reads).
  public static func writeStreet(to root: URL, options: StreetOptions = StreetOptions()) throws {
    guard (2...1000).contains(options.frames), (0..<options.frames).contains(options.annotatedFrame) else {
      throw DataError("street snippets of \(options.frames) frames annotated at index \(options.annotatedFrame): need 2…1000 frames and an index among them")
    }
    let jobs = [("train", options.trainSnippets), ("val", options.valSnippets)].flatMap { split, count in
      (0..<count).map { (split: split, index: $0) }
    }
    let folders = ["train", "val"].flatMap { split in
      ["leftImg8bit_sequence", "leftImg8bit", "gtFine", "flow"].map { root.appendingPathComponent("\($0)/\(split)/synth") }
    }
    try makeFolders(folders)
    try parallel(jobs.count) { i in
      let job = jobs[i]
      let snippet = try streetSnippet(seed: options.seed, split: job.split, index: job.index, frames: options.frames,
                                  width: options.width, height: options.height)
      for (t, frame) in snippet.frames.enumerated() {
        let stem = String(format: "synth_%06d_%06d", job.index, t)
        try ImageIO.writePNG(frame, to: root.appendingPathComponent("leftImg8bit_sequence/\(job.split)/synth/\(stem)_leftImg8bit.png"))
        try ImageIO.writePNG(snippet.labels[t], to: root.appendingPathComponent("gtFine/\(job.split)/synth/\(stem)_gtFine_labelIds.png"))
        if t < snippet.flows.count {
          try FlowFile.write(snippet.flows[t], to: root.appendingPathComponent("flow/\(job.split)/synth/\(stem)_flow.flo"))
        }
        if t == options.annotatedFrame {
          try ImageIO.writePNG(frame, to: root.appendingPathComponent("leftImg8bit/\(job.split)/synth/\(stem)_leftImg8bit.png"))
        }
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
