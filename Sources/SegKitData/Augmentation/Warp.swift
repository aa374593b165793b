import Foundation

/// One function per kind of entry, each applying a sample's geometric plan (its resampler),
/// so that the image, the label and every keyed extra move together.
extension Augmentation {
  /// An RGB image or extra frame: resampled, given the sample's photometric draws, normalised
  /// to planar 3 × H × W floats.
  func warpFrame(_ image: Image, resampler: Resampler, draws: PhotometricDraws, random: inout SeededRandom) -> [Float] {
    let (width, height) = resampler.output
    let plane = width * height
    let padding = imagePadding ?? normalization.neutralPixel
    var pixels = [Float](repeating: 0, count: 3 * plane)
    // Which output pixels came from inside the source: photometric changes leave padding alone.
    var valid = [UInt8](repeating: 1, count: plane)
    switch imageInterpolation {
    case .bilinear:
      pixels.withUnsafeMutableBufferPointer { dst in
        valid.withUnsafeMutableBufferPointer { resampler.bilinear(image, padding: padding, into: dst, valid: $0) }
      }
    case .nearest:
      let near = resampler.nearest(image, padding: [0, 0, 0])
      let inside = resampler.nearest(Image(width: image.width, height: image.height, channels: 1, filling: 1), padding: [0])
      for i in 0..<plane {
        valid[i] = inside[i]
        for c in 0..<3 { pixels[c * plane + i] = inside[i] == 1 ? Float(near[3 * i + c]) : padding[c] }
      }
    }
    photometric(&pixels, valid: valid, width: width, height: height, draws: draws, random: &random)
    normalise(&pixels, plane: plane)
    return pixels
  }

  /// A label or mask: nearest neighbour only, so values are never blended; outside the source takes `padding`.
  func warpMask(_ mask: Image, resampler: Resampler, padding: UInt8) -> [UInt8] {
    resampler.nearest(mask, padding: [padding])
  }

  /// A flow field: resampled bilinearly (padding 0), its vectors mapped by the plan's linear part.
  func warpFlow(_ flow: FlowField, resampler: Resampler, linear m: AffineMap) -> [Float] {
    let plane = resampler.output.width * resampler.output.height
    var out = [Float](repeating: 0, count: 2 * plane)
    flow.values.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { resampler.bilinear(src, planes: 2, padding: [0, 0], into: $0) }
    }
    // A displacement is a difference of positions: only the linear part applies.
    let (a, b, d, e) = (Float(m.a), Float(m.b), Float(m.d), Float(m.e))
    for i in 0..<plane {
      let (x, y) = (out[i], out[plane + i])
      out[i] = a * x + b * y
      out[plane + i] = d * x + e * y
    }
    return out
  }

  /// RGB planes of 0–255 values to the model's input: channel order, then
  /// value / divisor − mean, over std, as value · (1 / (divisor · std)) − mean / std.
  private func normalise(_ pixels: inout [Float], plane: Int) {
    if normalization.channelOrder == .bgr {
      for i in 0..<plane { pixels.swapAt(i, 2 * plane + i) }
    }
    let (mean, std, divisor) = (normalization.mean, normalization.std, normalization.pixelDivisor)
    pixels.withUnsafeMutableBufferPointer { p in
      for c in 0..<3 {
        let scale = 1 / (divisor * std[c]), shift = mean[c] / std[c]
        for i in (c * plane)..<((c + 1) * plane) { p[i] = p[i] * scale - shift }
      }
    }
  }
}

extension InputNormalization {
  /// The 0–255 RGB value that normalises to zero in every channel: what padding takes.
  public var neutralPixel: [Float] {
    (0..<3).map { rgb in
      let channel = channelOrder == .bgr ? 2 - rgb : rgb
      return mean[channel] * pixelDivisor
    }
  }
}
