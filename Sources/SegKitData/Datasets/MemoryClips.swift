import Foundation

// Training clips for memory-based video object segmentation (XMem): a sample is a clip,
// its first frame the sample's image and label (object ids, 0 background), frame i ≥ 1
// in `frames[.clip(i)]` and `masks[.clip(i)]`. The loader's augmentation (crop, scale,
// flip, colour) is the same for every frame of a clip; `FrameJitter` moves each frame
// on its own.

/// XMem's video clips (its VOSDataset): one clip per video per epoch, of `length`
/// annotated frames drawn iteratively (each new frame within `maximumJump` of one
/// already drawn, at most the video's length apart), sorted, and reversed with
/// probability ½. Up to five draws are made until the first frame shows an object.
public struct VideoClipSource: DrawnSampleSource {
  public let dataset: VideoDataset
  public let length: Int
  /// The largest jump in epoch e (XMem widens and narrows it as training goes on).
  public let maximumJump: @Sendable (Int) -> Int
  public let jitter: FrameJitter
  /// Per usable video: its annotated frames, as indices into `dataset.frames`.
  let videos: [(name: String, frames: [Int])]

  public init(dataset: VideoDataset, length: Int, maximumJump: @escaping @Sendable (Int) -> Int, jitter: FrameJitter = .videoClip) throws {
    guard length >= 2 else { throw DataError("a training clip needs at least 2 frames, not \(length)") }
    var videos: [(String, [Int])] = []
    var offset = 0
    for sequence in dataset.sequences {
      let annotated = sequence.frames.indices.filter { sequence.frames[$0].label != nil }.map { offset + $0 }
      offset += sequence.frames.count
      // As XMem, videos shorter than a clip are left out.
      if annotated.count >= length { videos.append((sequence.name, annotated)) }
    }
    guard !videos.isEmpty else {
      throw DataError("\(dataset.frames.root.path): no video of the \(dataset.frames.split) split has \(length) annotated frames for a clip")
    }
    (self.dataset, self.length, self.maximumJump, self.jitter, self.videos) = (dataset, length, maximumJump, jitter, videos)
  }

  public var count: Int { videos.count }

  /// The clip's frame positions (into the video's annotated frames), as XMem draws them.
  public static func drawFrames(count: Int, length: Int, maximumJump: Int, random: inout SeededRandom) -> [Int] {
    let jump = max(1, min(count, maximumJump))
    func window(_ i: Int) -> Set<Int> { Set(max(0, i - jump)..<min(count, i + jump + 1)) }
    var chosen = [random.below(count)]
    var acceptable = window(chosen[0]).subtracting(chosen)
    while chosen.count < length {
      let next = acceptable.sorted()[random.below(acceptable.count)]
      chosen.append(next)
      acceptable = acceptable.union(window(next)).subtracting(chosen)
    }
    chosen.sort()
    return random.chance(0.5) ? chosen.reversed() : chosen
  }

  public func loadSample(at index: Int, epoch: Int, seed: UInt64) throws -> Sample {
    let video = videos[index]
    var random = SeededRandom(seed: seed)
    var frames: [(image: Image, label: Image)] = []
    for _ in 0..<5 {
      let positions = Self.drawFrames(count: video.frames.count, length: length, maximumJump: maximumJump(epoch), random: &random)
      frames = try positions.map { position in
        let sample = try dataset.frames.loadSample(at: video.frames[position])
        guard var label = sample.label else { throw DataError("\(sample.name): the frame has no annotation") }
        for i in label.pixels.indices where label.pixels[i] == voidLabel { label.pixels[i] = 0 }
        return try jitter.apply(image: sample.image, label: label, random: &random)
      }
      if frames[0].label.pixels.contains(where: { $0 != 0 }) { break }
    }
    return Self.clip(name: video.name, frames)
  }

  static func clip(name: String, _ frames: [(image: Image, label: Image)]) -> Sample {
    var clip = Sample(name: name, image: frames[0].image, label: frames[0].label)
    for (i, frame) in frames.enumerated().dropFirst() {
      clip.frames[.clip(i)] = frame.image
      clip.masks[.clip(i)] = frame.label
    }
    return clip
  }
}

/// XMem's static-image sequences (stage 0, its StaticTransformDataset): an image and its
/// foreground (any label that is not background or void) made into `length` frames, each
/// jittered on its own (affine and thin-plate warp); with `maximumObjects` above 1, up to
/// that many images, each made into its own sequence, pasted over the first as objects 1, 2, ….
public struct StaticSequenceSource: DrawnSampleSource {
  public let base: SegmentationDataset
  public let length: Int
  public let maximumObjects: Int
  public let jitter: FrameJitter

  public init(base: SegmentationDataset, length: Int = 3, maximumObjects: Int = 1, jitter: FrameJitter = .staticImage) throws {
    guard length >= 2, maximumObjects >= 1 else {
      throw DataError("a static-image sequence needs at least 2 frames and 1 object, not \(length) frames and \(maximumObjects)")
    }
    guard base.count > 0 else { throw DataError("\(base.root.path): the \(base.split) split has no images") }
    (self.base, self.length, self.maximumObjects, self.jitter) = (base, length, maximumObjects, jitter)
  }

  public var count: Int { base.count }

  public func loadSample(at index: Int, epoch: Int, seed: UInt64) throws -> Sample {
    var random = SeededRandom(seed: seed)
    let extra = random.below(maximumObjects)
    let sources = [index] + (0..<extra).map { _ in random.below(base.count) }
    var merged: [(image: Image, label: Image)] = []
    for (object, source) in sources.enumerated() {
      let sample = try base.loadSample(at: source)
      guard let label = sample.label else { throw DataError("\(sample.name): the image has no mask") }
      var (image, foreground) = (sample.image, label)
      for i in foreground.pixels.indices { foreground.pixels[i] = foreground.pixels[i] == 0 || foreground.pixels[i] == voidLabel ? 0 : 1 }
      if let first = merged.first?.image, first.width != image.width || first.height != image.height {
        (image, foreground) = try Self.resized(image, foreground, to: first)
      }
      for t in 0..<length {
        let (frame, mask) = try jitter.apply(image: image, label: foreground, random: &random)
        if object == 0 {
          merged.append((frame, mask))
          continue
        }
        for p in mask.pixels.indices where mask.pixels[p] != 0 {
          merged[t].label.pixels[p] = UInt8(object + 1)
          for c in 0..<3 { merged[t].image.pixels[p * 3 + c] = frame.pixels[p * 3 + c] }
        }
      }
    }
    return VideoClipSource.clip(name: base.files[index].name, merged)
  }

  /// An image and its mask resampled to `reference`'s size (bilinear, nearest).
  static func resized(_ image: Image, _ mask: Image, to reference: Image) throws -> (Image, Image) {
    let map = AffineMap.scale(Double(reference.width) / Double(image.width), Double(reference.height) / Double(image.height))
    let resampler = Resampler(source: (image.width, image.height), output: (reference.width, reference.height), inverse: map.inverse)
    var planar = [Float](repeating: 0, count: 3 * reference.width * reference.height)
    planar.withUnsafeMutableBufferPointer { resampler.bilinear(image, padding: [0, 0, 0], into: $0, valid: nil) }
    let plane = reference.width * reference.height
    var pixels = [UInt8](repeating: 0, count: 3 * plane)
    for i in 0..<plane { for c in 0..<3 { pixels[i * 3 + c] = UInt8(max(0, min(255, planar[c * plane + i].rounded()))) } }
    return (try Image(width: reference.width, height: reference.height, channels: 3, pixels: pixels),
            try Image(width: reference.width, height: reference.height, channels: 1, pixels: resampler.nearest(mask, padding: [0])))
  }
}
