import Foundation

/// A sample after augmentation: plain Swift buffers (built on worker threads; the
/// consumer turns them into tensors), all width × height.
public struct AugmentedSample: Sendable {
  public var name: String
  public var width: Int
  public var height: Int
  /// 3 × H × W, normalised: (value / divisor − mean) / std, in the normalisation's channel order.
  public var image: [Float]
  /// H × W label ids, void 255 (padding included).
  public var label: [UInt8]?
  /// 3 × H × W each, normalised like `image`.
  public var frames: [SampleKey: [Float]]
  /// H × W each (padding 0).
  public var masks: [SampleKey: [UInt8]]
  /// 2 × H × W each: displacements in output pixels (padding 0).
  public var flows: [SampleKey: [Float]]
}

/// Geometric and photometric augmentation applied identically to an image, its label
/// and its keyed extras (frames, masks, flows); deterministic for a given random stream.
///
/// Order: resize → random scale → pad and crop → flip → affine (one plan per sample, one
/// resampling pass for all of these), then brightness, contrast, saturation, hue, blur,
/// noise, then normalisation. Each kind of entry goes through one function (see Warp.swift):
/// the image and extra frames bilinearly (torch's align_corners=False convention) with the
/// same photometric draws; the label and masks by nearest neighbour only, never blended;
/// flows bilinearly with their vectors transformed by the plan's linear part (a flip
/// negates x, a scale scales the displacements).
public struct Augmentation: Sendable {
  public enum Resize: Sendable, Equatable {
    /// Exactly height × width.
    case size(height: Int, width: Int)
    /// The shorter side to `length`, keeping the aspect ratio (torchvision's Resize(int)).
    case shorterSide(Int)
  }

  // Geometry
  public var resize: Resize?
  /// DeepLab's min_scale_factor, max_scale_factor and scale_factor_step_size: with a
  /// positive step the scale is drawn uniformly from min, min + step, …, max; with step 0
  /// from the continuous range.
  public var minScale = 1.0
  public var maxScale = 1.0
  public var scaleStep = 0.0
  /// Crop size (height, width). Smaller images are first padded at the bottom and right
  /// (as DeepLab does); the crop is placed at random, or centred when `randomCrop` is false.
  public var crop: Size2?
  public var randomCrop = true
  public var flipProbability = 0.0
  /// Rotation drawn from ±`rotation` degrees, x-shear from ±`shear` degrees, translation
  /// from ±`translation` × the output size, about the output centre, with `affineProbability`.
  public var rotation = 0.0
  public var shear = 0.0
  public var translation = 0.0
  public var affineProbability = 1.0
  /// Nearest is for tests and for inputs that must not be blended; labels are always nearest.
  public var imageInterpolation: ImageInterpolation = .bilinear

  // Photometric (torchvision ColorJitter's meaning: factors drawn from [1 − x, 1 + x], hue shift from ±hue)
  public var brightness = 0.0
  public var contrast = 0.0
  public var saturation = 0.0
  public var hue = 0.0
  public var colorProbability = 1.0
  /// Gaussian blur with σ drawn from `blurSigma` (pixels), with `blurProbability`.
  public var blurProbability = 0.0
  public var blurSigma: ClosedRange<Double> = 0.1...2.0
  /// Additive Gaussian noise with standard deviation drawn from 0...`noiseStd` (in 0–255 units).
  public var noiseProbability = 0.0
  public var noiseStd = 0.0

  // Output
  /// How the model wants its input (ImageNet's statistics by default; the model's own).
  public var normalization = InputNormalization.imagenet
  /// Image padding in 0–255 units; nil pads with the mean (0 after normalisation).
  public var imagePadding: [Float]?
  public var labelPadding: UInt8 = voidLabel

  public enum ImageInterpolation: Sendable { case bilinear, nearest }

  /// Normalisation only.
  public init() {}

  /// DeepLab's training augmentation: scale in [min, max] by `step`, pad and random crop, flip.
  public static func deeplab(crop: Int = 513, minScale: Double = 0.5, maxScale: Double = 2.0, step: Double = 0.25) -> Augmentation {
    var augmentation = Augmentation()
    (augmentation.minScale, augmentation.maxScale, augmentation.scaleStep) = (minScale, maxScale, step)
    augmentation.crop = Size2(crop, crop)
    augmentation.flipProbability = 0.5
    return augmentation
  }

  /// OSVOS' training augmentation (its PyTorch release): flip, scale 0.75–1.25 and rotation ±30°.
  public static func osvos() -> Augmentation {
    var augmentation = Augmentation()
    (augmentation.minScale, augmentation.maxScale) = (0.75, 1.25)
    augmentation.flipProbability = 0.5
    augmentation.rotation = 30
    return augmentation
  }

  /// Evaluation: an optional resize, then normalisation.
  public static func evaluation(resize: Resize? = nil) -> Augmentation {
    var augmentation = Augmentation()
    augmentation.resize = resize
    return augmentation
  }

  // MARK: Applying

  /// Augments with the stream of `seed` (the loader derives it from its seed, the epoch and the sample).
  public func apply(to sample: Sample, seed: UInt64) throws -> AugmentedSample {
    var random = SeededRandom(seed: seed)
    return try apply(to: sample, random: &random)
  }

  public func apply(to sample: Sample, random: inout SeededRandom) throws -> AugmentedSample {
    guard normalization.mean.count == 3, normalization.std.count == 3 else {
      throw DataError("the input normalisation needs 3 means and 3 standard deviations")
    }
    try checkEntries(of: sample)
    let image = sample.image
    let (forward, width, height) = plan(width: image.width, height: image.height, random: &random)
    let resampler = Resampler(source: (image.width, image.height), output: (width, height), inverse: forward.inverse)
    let draws = drawPhotometric(&random)
    let pixels = warpFrame(image, resampler: resampler, draws: draws, random: &random)
    // Frames after the image, in key order, so that the noise draws do not depend on dictionary order.
    var frames: [SampleKey: [Float]] = [:]
    for (key, frame) in sample.frames.sorted(by: { $0.key < $1.key }) {
      frames[key] = warpFrame(frame, resampler: resampler, draws: draws, random: &random)
    }
    return AugmentedSample(
      name: sample.name, width: width, height: height, image: pixels,
      label: sample.label.map { warpMask($0, resampler: resampler, padding: labelPadding) },
      frames: frames,
      masks: sample.masks.mapValues { warpMask($0, resampler: resampler, padding: 0) },
      flows: sample.flows.mapValues { warpFlow($0, resampler: resampler, linear: forward) })
  }

  /// Every entry must have the image's size, the channels its kind needs and the values that fill it.
  private func checkEntries(of sample: Sample) throws {
    let image = sample.image
    var entries = [("image", image.width, image.height, image.channels, image.pixels.count, 3)]
    if let label = sample.label { entries.append(("label", label.width, label.height, label.channels, label.pixels.count, 1)) }
    for (key, frame) in sample.frames.sorted(by: { $0.key < $1.key }) {
      entries.append(("frame '\(key)'", frame.width, frame.height, frame.channels, frame.pixels.count, 3))
    }
    for (key, mask) in sample.masks.sorted(by: { $0.key < $1.key }) {
      entries.append(("mask '\(key)'", mask.width, mask.height, mask.channels, mask.pixels.count, 1))
    }
    for (key, flow) in sample.flows.sorted(by: { $0.key < $1.key }) {
      entries.append(("flow '\(key)'", flow.width, flow.height, 2, flow.values.count, 2))
    }
    for (what, width, height, channels, count, needed) in entries {
      if width != image.width || height != image.height {
        throw DataError("\(sample.name): \(what) is \(width)×\(height) but the image is \(image.width)×\(image.height)")
      }
      if channels != needed {
        throw DataError("\(sample.name): \(what) has \(channels) channels; augmentation needs \(needed)")
      }
      if count != width * height * channels {
        throw DataError("\(sample.name): \(what) holds \(count) values, not \(channels)×\(height)×\(width)")
      }
    }
  }

  /// The forward map (source → output continuous coordinates) and the output size,
  /// with every random draw made in a fixed order.
  func plan(width: Int, height: Int, random: inout SeededRandom) -> (AffineMap, Int, Int) {
    var (w, h) = (width, height)
    switch resize {
    case .size(let rh, let rw)?: (w, h) = (rw, rh)
    case .shorterSide(let length)?:
      if width <= height {
        (w, h) = (length, max(1, Int(Double(length) * Double(height) / Double(width))))
      } else {
        (w, h) = (max(1, Int(Double(length) * Double(width) / Double(height))), length)
      }
    case nil: break
    }
    let scale = drawScale(&random)
    // DeepLab truncates the scaled size.
    let (sw, sh) = (max(1, Int(Double(w) * scale)), max(1, Int(Double(h) * scale)))
    var map = AffineMap.scale(Double(sw) / Double(width), Double(sh) / Double(height))
    var (ow, oh) = (sw, sh)
    if let crop {
      (ow, oh) = (crop.width, crop.height)
      let (spareX, spareY) = (max(0, sw - ow), max(0, sh - oh))
      let (x, y) = randomCrop ? (random.below(spareX + 1), random.below(spareY + 1)) : (spareX / 2, spareY / 2)
      map = AffineMap.translation(-Double(x), -Double(y)).after(map)
    }
    if random.chance(flipProbability) {
      map = AffineMap(a: -1, b: 0, c: Double(ow), d: 0, e: 1, f: 0).after(map)
    }
    if rotation != 0 || shear != 0 || translation != 0, random.chance(affineProbability) {
      let angle = random.uniform(-rotation, rotation) * .pi / 180
      let shearAngle = random.uniform(-shear, shear) * .pi / 180
      let (tx, ty) = (random.uniform(-translation, translation) * Double(ow), random.uniform(-translation, translation) * Double(oh))
      let (cx, cy) = (Double(ow) / 2, Double(oh) / 2)
      let rotate = AffineMap(a: cos(angle), b: -sin(angle), c: 0, d: sin(angle), e: cos(angle), f: 0)
      let shearMap = AffineMap(a: 1, b: tan(shearAngle), c: 0, d: 0, e: 1, f: 0)
      map = AffineMap.translation(cx + tx, cy + ty).after(rotate).after(shearMap).after(.translation(-cx, -cy)).after(map)
    }
    return (map, ow, oh)
  }

  /// One draw of the random scale.
  public func drawScale(_ random: inout SeededRandom) -> Double {
    guard maxScale > minScale else { return minScale }
    guard scaleStep > 0 else { return random.uniform(minScale, maxScale) }
    let steps = Int(((maxScale - minScale) / scaleStep).rounded(.down)) + 1
    return minScale + Double(random.below(steps)) * scaleStep
  }

  /// The augmented image back as 8-bit RGB (undoing the normalisation), for viewing and tests.
  public func displayImage(_ sample: AugmentedSample) throws -> Image {
    let plane = sample.width * sample.height
    var pixels = [UInt8](repeating: 0, count: 3 * plane)
    for i in 0..<plane {
      for rgb in 0..<3 {
        let c = normalization.channelOrder == .bgr ? 2 - rgb : rgb
        let v = (sample.image[c * plane + i] * normalization.std[c] + normalization.mean[c]) * normalization.pixelDivisor
        pixels[3 * i + rgb] = UInt8(max(0, min(255, v.rounded())))
      }
    }
    return try Image(width: sample.width, height: sample.height, channels: 3, pixels: pixels)
  }
}
