import Foundation

/// How a previous mask is spoilt for training mask propagation, so that a network
/// fed its own imperfect, propagated masks learns to correct them rather than copy
/// them: each draw grows or shrinks the mask by up to `maximumRadius` pixels (a
/// square neighbourhood), shifts it by up to `maximumShift` pixels each way, and with
/// `dropProbability` removes a rectangle of up to `maximumDropFraction` of its box.
public struct MaskPerturbation: Sendable, Equatable {
  public var maximumRadius = 0
  public var maximumShift = 0
  public var dropProbability = 0.0
  public var maximumDropFraction = 0.3

  public init(maximumRadius: Int = 0, maximumShift: Int = 0, dropProbability: Double = 0, maximumDropFraction: Double = 0.3) {
    self.maximumRadius = maximumRadius
    self.maximumShift = maximumShift
    self.dropProbability = dropProbability
    self.maximumDropFraction = maximumDropFraction
  }

  /// None: the mask as it is.
  public static let none = MaskPerturbation()
  /// A moderate default for training: ±3 px of growth, 4 px of shift, a part dropped one time in four.
  public static let training = MaskPerturbation(maximumRadius: 3, maximumShift: 4, dropProbability: 0.25)

  /// A 0/1 mask spoilt by one draw of `random`.
  public func apply(to mask: Image, random: inout SeededRandom) -> Image {
    let (w, h) = (mask.width, mask.height)
    var out = mask
    if maximumRadius > 0 {
      let radius = random.below(2 * maximumRadius + 1) - maximumRadius
      if radius != 0 { out = Self.morph(out, radius: abs(radius), grow: radius > 0) }
    }
    if maximumShift > 0 {
      let (dx, dy) = (random.below(2 * maximumShift + 1) - maximumShift, random.below(2 * maximumShift + 1) - maximumShift)
      var shifted = Image(width: w, height: h, channels: 1)
      for y in 0..<h where (0..<h).contains(y - dy) {
        for x in 0..<w where (0..<w).contains(x - dx) { shifted.pixels[y * w + x] = out.pixels[(y - dy) * w + x - dx] }
      }
      out = shifted
    }
    if random.chance(dropProbability), let box = Self.box(out) {
      let (bw, bh) = (box.x1 - box.x0, box.y1 - box.y0)
      let (dw, dh) = (max(1, Int(Double(bw) * random.uniform(0, maximumDropFraction))), max(1, Int(Double(bh) * random.uniform(0, maximumDropFraction))))
      let (x0, y0) = (box.x0 + random.below(max(1, bw - dw + 1)), box.y0 + random.below(max(1, bh - dh + 1)))
      for y in y0..<min(h, y0 + dh) { for x in x0..<min(w, x0 + dw) { out.pixels[y * w + x] = 0 } }
    }
    return out
  }

  /// Grows (dilates) or shrinks (erodes) a 0/1 mask by a (2r + 1)² square.
  public static func morph(_ mask: Image, radius: Int, grow: Bool) -> Image {
    let (w, h) = (mask.width, mask.height)
    // Two passes of a 1-D running window (rows, then columns) make the square.
    func pass(_ input: [UInt8], horizontal: Bool) -> [UInt8] {
      var output = input
      for line in 0..<(horizontal ? h : w) {
        let length = horizontal ? w : h
        let at = { (i: Int) in horizontal ? line * w + i : i * w + line }
        for i in 0..<length {
          var any = false, all = true
          for j in max(0, i - radius)...min(length - 1, i + radius) {
            let set = input[at(j)] != 0
            any = any || set
            all = all && set
          }
          output[at(i)] = (grow ? any : all) ? 1 : 0
        }
      }
      return output
    }
    var out = mask
    out.pixels = pass(pass(mask.pixels, horizontal: true), horizontal: false)
    return out
  }

  /// The mask's bounding box (x1, y1 exclusive), nil when empty.
  static func box(_ mask: Image) -> (x0: Int, y0: Int, x1: Int, y1: Int)? {
    var (x0, y0, x1, y1) = (Int.max, Int.max, -1, -1)
    for (i, value) in mask.pixels.enumerated() where value != 0 {
      let (y, x) = (i / mask.width, i % mask.width)
      (x0, y0, x1, y1) = (min(x0, x), min(y0, y), max(x1, x + 1), max(y1, y + 1))
    }
    return x1 < 0 ? nil : (x0, y0, x1, y1)
  }
}

/// Training samples for mask propagation (MaskRNN's streams), one object of one frame
/// each: frame t, its label the object's mask (1; void stays 255; other objects 0), and
///
///     masks[.previous]   the object's annotated mask of frame t−1, warped to frame t with
///                        the flow from t to t−1, then perturbed (frame 0: its own mask, perturbed)
///     flows[.previous]   the flow from t to t−1 (zero at the first frame)
///     flows[.next]       the flow from t to t+1 (zero at the last frame)
///
/// Flows come from `cache` (computed there when missing). Objects are those of each
/// sequence's first annotation (DAVIS 2016: its one object). Perturbations are drawn
/// from (seed, index), so a sample is the same on every read.
public struct MaskPropagationSource: SampleSource {
  public let dataset: VideoDataset
  public let flows: any FrameFlowSource
  public let perturbation: MaskPerturbation
  public let seed: UInt64
  /// (sequence, frame, object id) of each sample.
  public let items: [(sequence: Int, frame: Int, object: Int)]
  let singleObject: Bool

  public init(dataset: VideoDataset, flows: any FrameFlowSource, perturbation: MaskPerturbation = .training, seed: UInt64 = 0) throws {
    self.dataset = dataset
    self.flows = flows
    self.perturbation = perturbation
    self.seed = seed
    singleObject = dataset.frames.format == .davis2016
    var items: [(Int, Int, Int)] = []
    for (s, sequence) in dataset.sequences.enumerated() {
      guard let first = sequence.frames.first?.label?.url else {
        throw DataError("\(sequence.name): no first-frame annotation, so no objects to propagate")
      }
      let annotation = try ImageIO.readLabel(first)
      let ids = singleObject ? [1] : Set(annotation.pixels).subtracting([0, voidLabel]).map(Int.init).sorted()
      for frame in sequence.frames.indices { for id in ids { items.append((s, frame, id)) } }
    }
    self.items = items
  }

  public var count: Int { items.count }

  public func loadSample(at index: Int) throws -> Sample {
    let (s, t, object) = items[index]
    let sequence = dataset.sequences[s]
    let image = try ImageIO.read(sequence.frames[t].image)
    func objectMask(_ frame: Int) throws -> Image {
      guard let url = sequence.frames[frame].label?.url else {
        throw DataError("\(sequence.frames[frame].image.path): the frame has no annotation")
      }
      var mask = try ImageIO.readLabel(url)
      guard mask.width == image.width, mask.height == image.height else {
        throw DataError("\(url.path): \(mask.width)×\(mask.height), but its frame is \(image.width)×\(image.height)")
      }
      for i in mask.pixels.indices {
        let value = mask.pixels[i]
        mask.pixels[i] = singleObject ? (value != 0 ? 1 : 0) : (value == voidLabel ? voidLabel : (Int(value) == object ? 1 : 0))
      }
      return mask
    }
    let label = try objectMask(t)
    let (backward, forward) = try flows.flows(of: sequence, frame: t)
    let zero = try FlowField(width: image.width, height: image.height, values: [Float](repeating: 0, count: 2 * image.width * image.height))
    var previous = try objectMask(max(0, t - 1))
    for i in previous.pixels.indices where previous.pixels[i] == voidLabel { previous.pixels[i] = 0 }
    if let backward { previous = try FlowWarp.warp(mask: previous, by: backward) }
    var random = SeededRandom(seed, UInt64(index))
    previous = perturbation.apply(to: previous, random: &random)
    return Sample(name: "\(sequence.frames[t].name)#\(object)", image: image, label: label, masks: [.previous: previous],
                  flows: [.previous: backward ?? zero, .next: forward ?? zero])
  }
}
