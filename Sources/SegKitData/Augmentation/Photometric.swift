import Foundation

/// The photometric parameters drawn once per sample and shared by its image and extra
/// frames, so that neighbouring frames keep the same colours.
struct PhotometricDraws {
  /// Brightness, contrast and saturation factors and hue shift, when colour jitter applies.
  var color: (brightness: Float, contrast: Float, saturation: Float, hue: Float)?
  var blurSigma: Double?
  var noiseStd: Double?
}

/// Colour, blur and noise on planar RGB floats in 0–255. Padding pixels (valid = 0)
/// keep their value so that they still normalise to the padding value.
extension Augmentation {
  func drawPhotometric(_ random: inout SeededRandom) -> PhotometricDraws {
    var draws = PhotometricDraws()
    if brightness > 0 || contrast > 0 || saturation > 0 || hue > 0, random.chance(colorProbability) {
      let b = brightness > 0 ? Float(random.uniform(max(0, 1 - brightness), 1 + brightness)) : 1
      let c = contrast > 0 ? Float(random.uniform(max(0, 1 - contrast), 1 + contrast)) : 1
      let s = saturation > 0 ? Float(random.uniform(max(0, 1 - saturation), 1 + saturation)) : 1
      let h = hue > 0 ? Float(random.uniform(-min(hue, 0.5), min(hue, 0.5))) : 0
      draws.color = (b, c, s, h)
    }
    if random.chance(blurProbability) { draws.blurSigma = random.uniform(blurSigma.lowerBound, blurSigma.upperBound) }
    if noiseStd > 0, random.chance(noiseProbability) { draws.noiseStd = random.uniform(0, noiseStd) }
    return draws
  }

  /// Applies `draws`; `random` supplies only the per-pixel noise.
  func photometric(_ pixels: inout [Float], valid: [UInt8], width: Int, height: Int, draws: PhotometricDraws,
                   random: inout SeededRandom) {
    let plane = width * height
    if let color = draws.color {
      let (b, c, s, h) = color
      pixels.withUnsafeMutableBufferPointer { p in
        valid.withUnsafeBufferPointer { valid in
          if b != 1 { adjustBrightness(p, valid, plane, b) }
          if c != 1 { adjustContrast(p, valid, plane, c) }
          if s != 1 { adjustSaturation(p, valid, plane, s) }
          if h != 0 { adjustHue(p, valid, plane, h) }
        }
      }
    }
    if let sigma = draws.blurSigma { blur(&pixels, valid: valid, width: width, height: height, sigma: sigma) }
    if let std = draws.noiseStd {
      for i in 0..<plane where valid[i] != 0 {
        for c in 0..<3 { pixels[c * plane + i] = clamp255(pixels[c * plane + i] + Float(std * random.normal())) }
      }
    }
  }
}

@inline(__always) private func clamp255(_ v: Float) -> Float { min(255, max(0, v)) }

@inline(__always) private func gray(_ r: Float, _ g: Float, _ b: Float) -> Float { 0.299 * r + 0.587 * g + 0.114 * b }

private func adjustBrightness(_ p: UnsafeMutableBufferPointer<Float>, _ valid: UnsafeBufferPointer<UInt8>, _ plane: Int, _ f: Float) {
  for i in 0..<plane where valid[i] != 0 {
    for c in 0..<3 { p[c * plane + i] = clamp255(p[c * plane + i] * f) }
  }
}

/// Blends with the mean gray level of the (valid) image, as torchvision's adjust_contrast.
private func adjustContrast(_ p: UnsafeMutableBufferPointer<Float>, _ valid: UnsafeBufferPointer<UInt8>, _ plane: Int, _ f: Float) {
  var sum = 0.0, count = 0
  for i in 0..<plane where valid[i] != 0 {
    sum += Double(gray(p[i], p[plane + i], p[2 * plane + i]))
    count += 1
  }
  guard count > 0 else { return }
  let m = Float(sum / Double(count))
  for i in 0..<plane where valid[i] != 0 {
    for c in 0..<3 { p[c * plane + i] = clamp255((p[c * plane + i] - m) * f + m) }
  }
}

/// Blends each pixel with its own gray level, as torchvision's adjust_saturation.
private func adjustSaturation(_ p: UnsafeMutableBufferPointer<Float>, _ valid: UnsafeBufferPointer<UInt8>, _ plane: Int, _ f: Float) {
  for i in 0..<plane where valid[i] != 0 {
    let g = gray(p[i], p[plane + i], p[2 * plane + i])
    for c in 0..<3 { p[c * plane + i] = clamp255((p[c * plane + i] - g) * f + g) }
  }
}

/// Rotates the hue by `shift` turns through HSV, as torchvision's adjust_hue.
private func adjustHue(_ p: UnsafeMutableBufferPointer<Float>, _ valid: UnsafeBufferPointer<UInt8>, _ plane: Int, _ shift: Float) {
  for i in 0..<plane where valid[i] != 0 {
    let (r, g, b) = (p[i], p[plane + i], p[2 * plane + i])
    let maxc = max(r, g, b), minc = min(r, g, b)
    let delta = maxc - minc
    guard delta > 0 else { continue }  // gray: hue has no effect
    var h: Float
    if maxc == r {
      h = (g - b) / delta
    } else if maxc == g {
      h = 2 + (b - r) / delta
    } else {
      h = 4 + (r - g) / delta
    }
    h = h / 6 + shift
    h -= h.rounded(.down)
    let s = delta / maxc, v = maxc
    let h6 = h * 6
    let sector = min(Int(h6), 5)
    let frac = h6 - Float(sector)
    let (pp, q, t) = (v * (1 - s), v * (1 - s * frac), v * (1 - s * (1 - frac)))
    let rgb: (Float, Float, Float)
    switch sector {
    case 0: rgb = (v, t, pp)
    case 1: rgb = (q, v, pp)
    case 2: rgb = (pp, v, t)
    case 3: rgb = (pp, q, v)
    case 4: rgb = (t, pp, v)
    default: rgb = (v, pp, q)
    }
    (p[i], p[plane + i], p[2 * plane + i]) = (clamp255(rgb.0), clamp255(rgb.1), clamp255(rgb.2))
  }
}

/// Separable Gaussian blur (radius ⌈3σ⌉, borders replicated); padding pixels are restored afterwards.
private func blur(_ pixels: inout [Float], valid: [UInt8], width: Int, height: Int, sigma: Double) {
  let radius = max(1, Int((3 * sigma).rounded(.up)))
  var kernel = (-radius...radius).map { Float(exp(-Double($0 * $0) / (2 * sigma * sigma))) }
  let total = kernel.reduce(0, +)
  kernel = kernel.map { $0 / total }
  let plane = width * height
  let original = pixels
  var row = [Float](repeating: 0, count: plane)
  pixels.withUnsafeMutableBufferPointer { p in
    row.withUnsafeMutableBufferPointer { tmp in
      for c in 0..<3 {
        let base = c * plane
        for y in 0..<height {
          for x in 0..<width {
            var acc: Float = 0
            for k in -radius...radius { acc += kernel[k + radius] * p[base + y * width + min(max(x + k, 0), width - 1)] }
            tmp[y * width + x] = acc
          }
        }
        for y in 0..<height {
          for x in 0..<width {
            var acc: Float = 0
            for k in -radius...radius { acc += kernel[k + radius] * tmp[min(max(y + k, 0), height - 1) * width + x] }
            p[base + y * width + x] = acc
          }
        }
      }
      for i in 0..<plane where valid[i] == 0 {
        for c in 0..<3 { p[c * plane + i] = original[c * plane + i] }
      }
    }
  }
}
