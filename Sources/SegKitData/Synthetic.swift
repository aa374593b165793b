import Foundation

/// Small synthetic datasets in real layouts, for tests, demos and smoke training.
///
/// Everything is a pure function of the seed: each sample draws from its own
/// generator seeded by (seed, split, index), so files are identical byte for
/// byte across runs and independent of how many samples are written.
public enum Synthetic {
  // MARK: Semantic scenes (Pascal VOC layout)

  /// The classes of the semantic scenes. Each object class has its own shape and
  /// texture, and a main colour that varies around a class tone; the backgrounds
  /// and second texture colours are random.
  public static let semanticClassNames = ["background", "disc", "square", "triangle", "ring", "cross"]

  /// The colormap written into the label PNGs: Pascal's colours, these class names.
  public static var semanticColormap: Colormap {
    // The names fit (6 ≤ 256) and no colours are given, so this cannot fail.
    try! Colormap(name: "synthetic", classNames: semanticClassNames, colors: [])
  }

  public struct SemanticOptions: Sendable {
    public var trainCount = 300
    public var valCount = 50
    public var width = 96
    public var height = 96
    public var seed: UInt64 = 0
    public init() {}
  }

  /// One scene: an RGB image and its label map (class ids, 255 on the one-pixel
  /// inner edge of each object, like VOC's void boundaries).
  public static func semanticSample(seed: UInt64, split: String, index: Int, width: Int, height: Int) -> (image: Image, label: Image) {
    var rng = Generator(seed: seed, stream: "semantic/\(split)", index: index)
    var image = Image(width: width, height: height, channels: 3)
    var label = Image(width: width, height: height, channels: 1)
    let background = Background(&rng)
    let scale = Double(min(width, height))
    let objects = (0..<rng.int(1...4)).map { _ -> Shape in
      let kind = rng.int(1...semanticClassNames.count - 1)
      let radius = scale * rng.double(0.14, 0.3)
      return Shape(
        kind: kind, cx: rng.double(0.1, 0.9) * Double(width), cy: rng.double(0.1, 0.9) * Double(height),
        radius: radius, angle: rng.double(0, 2 * .pi), texture: Texture(kind: kind, radius: radius, &rng))
    }
    for y in 0..<height {
      for x in 0..<width {
        var color = background.color(Double(x), Double(y))
        var cls = 0
        for object in objects {
          let (u, v) = object.local(Double(x) + 0.5, Double(y) + 0.5)
          if object.contains(u, v) {
            color = object.texture.color(u * object.radius, v * object.radius)
            cls = object.kind
          }
        }
        label[x, y, 0] = UInt8(cls)
        for c in 0..<3 { image[x, y, c] = clamp(color[c] + rng.double(-10, 10)) }
      }
    }
    return (image, voidEdges(label))
  }

  /// Writes the VOC layout under `root`: JPEGImages/*.jpg, SegmentationClass/*.png
  /// (palette PNGs), ImageSets/Segmentation/{train,val,trainval}.txt, and
  /// classes.txt naming the classes in index order.
  public static func writeSemantic(to root: URL, options: SemanticOptions = SemanticOptions()) throws {
    let images = root.appendingPathComponent("JPEGImages")
    let labels = root.appendingPathComponent("SegmentationClass")
    let sets = root.appendingPathComponent("ImageSets/Segmentation")
    try makeFolders([images, labels, sets])
    let splits = [("train", options.trainCount), ("val", options.valCount)]
    var names: [String: [String]] = [:]
    var jobs: [(split: String, index: Int, name: String)] = []
    var serial = 0
    for (split, count) in splits {
      for index in 0..<count {
        serial += 1
        let name = String(format: "synth_%06d", serial)
        names[split, default: []].append(name)
        jobs.append((split, index, name))
      }
    }
    let colormap = semanticColormap
    let work = jobs
    try parallel(work.count) { i in
      let job = work[i]
      let sample = semanticSample(seed: options.seed, split: job.split, index: job.index,
                                  width: options.width, height: options.height)
      try ImageIO.writeJPEG(sample.image, to: images.appendingPathComponent("\(job.name).jpg"), quality: 90)
      try ImageIO.writePNG(sample.label, to: labels.appendingPathComponent("\(job.name).png"), palette: colormap)
    }
    for (split, _) in splits { try writeLines(names[split] ?? [], to: sets.appendingPathComponent("\(split).txt")) }
    try writeLines(splits.flatMap { names[$0.0] ?? [] }, to: sets.appendingPathComponent("trainval.txt"))
    try writeLines(semanticClassNames, to: root.appendingPathComponent("classes.txt"))
  }

  // MARK: Videos (DAVIS layout)

  public enum VideoLayout: String, Sendable, CaseIterable {
    /// Palette PNGs of object ids, ImageSets/2017/{train,val}.txt listing sequences.
    case davis2017
    /// Binary 0/255 gray PNGs, ImageSets/480p/{train,val}.txt listing "image annotation" pairs.
    case davis2016
  }

  public struct VideoOptions: Sendable {
    public var trainSequences = 8
    public var valSequences = 4
    public var frames = 24
    public var width = 128
    public var height = 96
    /// Objects per sequence; nil draws 1 to 3 per sequence. DAVIS 2016 always has one.
    public var objects: Int?
    public var layout = VideoLayout.davis2017
    public var seed: UInt64 = 0
    /// Objects textured like the background (a patch of it moving with them), so that
    /// motion, not appearance, tells them from it. The motions are the same as without.
    public var camouflage = false
    /// Also write each frame pair's exact flow (`videoFlows`): Flow/480p/<seq>/NNNNN.flo
    /// from frame N to N+1 and BackwardFlow/480p/<seq>/NNNNN.flo from frame N to N−1.
    public var writeFlow = true
    public init() {}
  }

  /// One sequence: frames and masks (object ids 1…N, 0 background). Objects are
  /// textured blobs that move across the frame, rotate and deform, and pass in
  /// front of each other (drawn in a fixed depth order) over a panning background.
  /// Their textures move with their outlines (`VideoMotion`), so `videoFlows` is the
  /// exact motion of every pixel.
  public static func videoSequence(seed: UInt64, split: String, index: Int, frames: Int, width: Int, height: Int,
                                   objects: Int?, camouflage: Bool = false) -> (frames: [Image], masks: [Image]) {
    var rng = Generator(seed: seed, stream: "video/\(split)", index: index)
    let motion = VideoMotion(&rng, frames: frames, width: width, height: height, objects: objects)
    let (background, pan) = (motion.background, motion.pan)
    var images: [Image] = []
    var masks: [Image] = []
    for t in 0..<frames {
      let time = Double(t)
      let placed = motion.placed(at: t)
      var image = Image(width: width, height: height, channels: 3)
      var mask = Image(width: width, height: height, channels: 1)
      for y in 0..<height {
        for x in 0..<width {
          var color = background.color(Double(x) + pan.0 * time, Double(y) + pan.1 * time)
          var id = 0
          for (i, blob) in placed.enumerated() {
            if let local = blob.local(Double(x) + 0.5, Double(y) + 0.5) {
              color = camouflage ? background.color(blob.anchor.0 + local.0, blob.anchor.1 + local.1) : blob.texture.color(local.0, local.1)
              id = i + 1
            }
          }
          mask[x, y, 0] = UInt8(id)
          for c in 0..<3 { image[x, y, c] = clamp(color[c] + rng.double(-6, 6)) }
        }
      }
      images.append(image)
      masks.append(mask)
    }
    return (images, masks)
  }

  /// Writes the DAVIS layout under `root`: JPEGImages/480p/<seq>/00000.jpg,
  /// Annotations/480p/<seq>/00000.png and the split files of `options.layout`.
  /// ("480p" is the layout's folder name; frames have the size asked for.)
  public static func writeVideo(to root: URL, options: VideoOptions = VideoOptions()) throws {
    let single = options.layout == .davis2016
    if single, let n = options.objects, n != 1 {
      throw DataError("\(root.path): the DAVIS 2016 layout holds one object per sequence, not \(n)")
    }
    if let n = options.objects, !(1...254).contains(n) {
      throw DataError("\(root.path): \(n) objects per sequence; expected 1 to 254")
    }
    let objects = single ? 1 : options.objects
    let splits = [("train", options.trainSequences), ("val", options.valSequences)]
    var jobs: [(split: String, index: Int, name: String)] = []
    for (split, count) in splits {
      for index in 0..<count { jobs.append((split, index, String(format: "synth-%@-%03d", split, index))) }
    }
    let images = root.appendingPathComponent("JPEGImages/480p")
    let annotations = root.appendingPathComponent("Annotations/480p")
    try makeFolders(jobs.flatMap { [images.appendingPathComponent($0.name), annotations.appendingPathComponent($0.name)] })
    let work = jobs
    try parallel(work.count) { i in
      let job = work[i]
      let sequence = videoSequence(seed: options.seed, split: job.split, index: job.index, frames: options.frames,
                                   width: options.width, height: options.height, objects: objects, camouflage: options.camouflage)
      if options.writeFlow {
        let flows = videoFlows(seed: options.seed, split: job.split, index: job.index, frames: options.frames,
                               width: options.width, height: options.height, objects: objects)
        try writeFlows(flows, sequence: job.name, under: root)
      }
      for (t, (frame, mask)) in zip(sequence.frames, sequence.masks).enumerated() {
        let file = String(format: "%05d", t)
        try ImageIO.writeJPEG(frame, to: images.appendingPathComponent("\(job.name)/\(file).jpg"), quality: 90)
        let maskURL = annotations.appendingPathComponent("\(job.name)/\(file).png")
        if single {
          var binary = mask
          binary.pixels = mask.pixels.map { $0 == 0 ? 0 : 255 }
          try ImageIO.writePNG(binary, to: maskURL)
        } else {
          try ImageIO.writePNG(mask, to: maskURL, palette: .pascal)
        }
      }
    }
    for (split, _) in splits {
      let names = jobs.filter { $0.split == split }.map(\.name)
      if single {
        let sets = root.appendingPathComponent("ImageSets/480p")
        try makeFolders([sets])
        let pairs = names.flatMap { name in
          (0..<options.frames).map { t in
            String(format: "/JPEGImages/480p/%@/%05d.jpg /Annotations/480p/%@/%05d.png", name, t, name, t)
          }
        }
        try writeLines(pairs, to: sets.appendingPathComponent("\(split).txt"))
      } else {
        let sets = root.appendingPathComponent("ImageSets/2017")
        try makeFolders([sets])
        try writeLines(names, to: sets.appendingPathComponent("\(split).txt"))
      }
    }
  }

  // MARK: Drawing

  /// xoshiro256** seeded through SplitMix64 from the seed, a stream name and an index.
  struct Generator {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    init(seed: UInt64, stream: String, index: Int) {
      // FNV-1a of the stream name: stable across runs, unlike String.hashValue.
      var key: UInt64 = 0xcbf2_9ce4_8422_2325
      for byte in stream.utf8 { key = (key ^ UInt64(byte)) &* 0x100_0000_01b3 }
      var state = seed ^ key ^ (UInt64(truncatingIfNeeded: index) &* 0x9e37_79b9_7f4a_7c15)
      func splitmix() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
      }
      s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    mutating func next() -> UInt64 {
      let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
      let t = s.1 << 17
      s.2 ^= s.0
      s.3 ^= s.1
      s.1 ^= s.2
      s.0 ^= s.3
      s.2 ^= t
      s.3 = s.3 << 45 | s.3 >> 19
      return result
    }

    /// Uniform in [low, high).
    mutating func double(_ low: Double, _ high: Double) -> Double {
      low + (high - low) * Double(next() >> 11) * 0x1p-53
    }

    /// Uniform in the range (the tiny modulo bias does not matter here).
    mutating func int(_ range: ClosedRange<Int>) -> Int {
      range.lowerBound + Int(next() % UInt64(range.count))
    }

    mutating func color() -> [Double] { [double(20, 235), double(20, 235), double(20, 235)] }
  }

  /// A smooth two-colour background: a gradient plus low-frequency waves.
  struct Background {
    let a, b: [Double]
    let direction: (Double, Double)
    let waves: [(fx: Double, fy: Double, phase: Double)]

    init(_ rng: inout Generator) {
      a = rng.color()
      b = rng.color()
      let theta = rng.double(0, 2 * .pi)
      direction = (cos(theta), sin(theta))
      waves = (0..<2).map { _ in (rng.double(-0.12, 0.12), rng.double(-0.12, 0.12), rng.double(0, 2 * .pi)) }
    }

    func color(_ x: Double, _ y: Double) -> [Double] {
      var t = 0.5 + 0.004 * (x * direction.0 + y * direction.1)
      for w in waves { t += 0.18 * sin(w.fx * x + w.fy * y + w.phase) }
      t = max(0, min(1, t))
      return (0..<3).map { a[$0] * (1 - t) + b[$0] * t }
    }
  }

  /// A two-colour pattern in an object's own coordinates (pixels from its centre),
  /// so it moves with the object. Kind 1 dots, 2 checks, 3 stripes, 4 mottled, 5 grid.
  struct Texture {
    let kind: Int
    let a, b: [Double]
    let period: Double

    /// Each class's main colour varies around its own tone, so colour is a hint
    /// (as in real scenes) while shape and texture still decide between close tones.
    static let classTones: [[Double]] = [[200, 60, 60], [60, 170, 70], [70, 90, 210], [210, 190, 50], [170, 70, 190]]

    init(kind: Int, radius: Double, _ rng: inout Generator) {
      self.kind = kind
      let tone = Texture.classTones[(kind - 1) % Texture.classTones.count]
      a = tone.map { max(20, min(235, $0 + rng.double(-45, 45))) }
      // Keep the two colours apart so the pattern stays visible.
      let base = rng.color()
      b = zip(a, base).map { abs($0 - $1) < 60 ? ($0 < 128 ? $0 + 90 : $0 - 90) : $1 }
      period = max(4, radius * rng.double(0.3, 0.5))
    }

    func color(_ u: Double, _ v: Double) -> [Double] {
      let p = period
      let fu = u / p - (u / p).rounded(.down), fv = v / p - (v / p).rounded(.down)
      let on: Bool
      switch kind {
      case 1: on = (fu - 0.5) * (fu - 0.5) + (fv - 0.5) * (fv - 0.5) < 0.09
      case 2: on = (Int((u / p).rounded(.down)) + Int((v / p).rounded(.down))) & 1 == 0
      case 3: on = fu < 0.5
      case 4: on = sin(u * 0.9 / p * .pi) + sin(v * 1.3 / p * .pi) + sin((u + v) * 0.7 / p * .pi) > 0
      default: on = fu < 0.25 || fv < 0.25
      }
      return on ? a : b
    }
  }

  /// An object of a semantic scene: a class shape, placed and turned.
  struct Shape {
    let kind: Int
    let cx, cy, radius, angle: Double
    let texture: Texture

    /// The point in the shape's frame, in radii.
    func local(_ x: Double, _ y: Double) -> (Double, Double) {
      let (dx, dy) = (x - cx, y - cy)
      let (c, s) = (cos(angle), sin(angle))
      return ((c * dx + s * dy) / radius, (-s * dx + c * dy) / radius)
    }

    func contains(_ u: Double, _ v: Double) -> Bool {
      switch kind {
      case 1: return u * u + v * v <= 1
      case 2: return max(abs(u), abs(v)) <= 0.8
      case 3:
        // Equilateral, vertices on the unit circle at -90°, 30°, 150°.
        return v <= 0.5 && 1.732_05 * u - v <= 1 && -1.732_05 * u - v <= 1
      case 4:
        let r2 = u * u + v * v
        return r2 <= 1 && r2 >= 0.3
      default: return (abs(u) <= 0.32 && abs(v) <= 1) || (abs(v) <= 0.32 && abs(u) <= 1)
      }
    }
  }

  /// A video object: a wobbling blob moving in a straight line, bouncing off the frame's edges.
  struct Blob {
    let start, velocity: (Double, Double)
    let radius, angle, spin: Double
    /// (amplitude, phase, phase speed) of the 2nd, 3rd and 4th harmonics of the outline.
    let wobble: [(Double, Double, Double)]
    let texture: Texture

    struct Placed {
      let cx, cy, angle, radius: Double
      let harmonics: [(Double, Double)]
      let texture: Texture
      /// The blob's radius before scaling, and its start (a camouflaged blob's patch of background).
      let baseRadius: Double
      let anchor: (Double, Double)

      /// The outline's radius in the direction `phi` of the blob's turning frame.
      func edge(_ phi: Double) -> Double {
        var edge = 1.0
        for (k, (amplitude, phase)) in harmonics.enumerated() { edge += amplitude * sin(Double(k + 2) * phi + phase) }
        return radius * edge
      }

      /// The point's material coordinates (pixels of the unscaled, undeformed blob in its
      /// turning frame), or nil outside its outline. Each ray from the centre is stretched
      /// with the outline, so the texture deforms and scales with it.
      func local(_ x: Double, _ y: Double) -> (Double, Double)? {
        let (dx, dy) = (x - cx, y - cy)
        let r = (dx * dx + dy * dy).squareRoot()
        guard r <= radius * 1.6 else { return nil }
        let phi = atan2(dy, dx) - angle
        let edge = self.edge(phi)
        guard r <= edge else { return nil }
        let stretch = baseRadius / edge
        return (r * cos(phi) * stretch, r * sin(phi) * stretch)
      }

      /// Where the material point at (u, v) (`local`'s coordinates) is.
      func position(_ u: Double, _ v: Double) -> (Double, Double) {
        let phi = atan2(v, u), r = (u * u + v * v).squareRoot() * edge(phi) / baseRadius
        return (cx + r * cos(phi + angle), cy + r * sin(phi + angle))
      }
    }

    func placed(at t: Double, width: Double, height: Double) -> Placed {
      Placed(
        cx: bounce(start.0 + velocity.0 * t, radius, width - radius),
        cy: bounce(start.1 + velocity.1 * t, radius, height - radius),
        angle: angle + spin * t, radius: radius * (1 + 0.1 * sin(0.2 * t + angle)),
        harmonics: wobble.map { ($0.0, $0.1 + $0.2 * t) }, texture: texture, baseRadius: radius, anchor: start)
    }

    /// Reflects a coordinate into [low, high], as a ball bouncing between walls.
    private func bounce(_ value: Double, _ low: Double, _ high: Double) -> Double {
      let span = high - low
      guard span > 0 else { return (low + high) / 2 }
      var p = (value - low).truncatingRemainder(dividingBy: 2 * span)
      if p < 0 { p += 2 * span }
      return low + (p <= span ? p : 2 * span - p)
    }
  }

  /// Marks with 255 each object pixel that touches a pixel of another class.
  static func voidEdges(_ label: Image) -> Image {
    var out = label
    let (w, h) = (label.width, label.height)
    for y in 0..<h {
      for x in 0..<w {
        let v = label.pixels[y * w + x]
        guard v != 0 else { continue }
        let differs = (x > 0 && label.pixels[y * w + x - 1] != v) || (x + 1 < w && label.pixels[y * w + x + 1] != v)
          || (y > 0 && label.pixels[(y - 1) * w + x] != v) || (y + 1 < h && label.pixels[(y + 1) * w + x] != v)
        if differs { out.pixels[y * w + x] = 255 }
      }
    }
    return out
  }

  static func clamp(_ value: Double) -> UInt8 { UInt8(max(0, min(255, value.rounded()))) }

  static func makeFolders(_ folders: [URL]) throws {
    for folder in folders {
      do {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      } catch {
        throw DataError("\(folder.path): cannot create the folder (\(error.localizedDescription))")
      }
    }
  }

  static func writeLines(_ lines: [String], to url: URL) throws {
    do {
      try AtomicFile.write(Data(lines.map { $0 + "\n" }.joined().utf8), to: url)
    } catch {
      throw DataError("\(url.path): cannot be written (\(error.localizedDescription))")
    }
  }

  /// Runs `body` for 0..<count on all cores; rethrows the first error.
  static func parallel(_ count: Int, _ body: @escaping @Sendable (Int) throws -> Void) throws {
    let failure = Locked<Error?>(nil)
    DispatchQueue.concurrentPerform(iterations: count) { i in
      guard failure.withLock({ $0 == nil }) else { return }
      do { try body(i) } catch { failure.withLock { if $0 == nil { $0 = error } } }
    }
    if let error = failure.withLock({ $0 }) { throw error }
  }
}
