import Foundation

/// A 2-D affine map p ↦ (a·x + b·y + c, d·x + e·y + f), in continuous pixel
/// coordinates (pixel i spans [i, i + 1), its centre at i + 0.5).
public struct AffineMap: Sendable, Equatable {
  public var a, b, c, d, e, f: Double

  public init(a: Double, b: Double, c: Double, d: Double, e: Double, f: Double) {
    (self.a, self.b, self.c, self.d, self.e, self.f) = (a, b, c, d, e, f)
  }

  public static let identity = AffineMap(a: 1, b: 0, c: 0, d: 0, e: 1, f: 0)

  public static func scale(_ sx: Double, _ sy: Double) -> AffineMap { AffineMap(a: sx, b: 0, c: 0, d: 0, e: sy, f: 0) }

  public static func translation(_ tx: Double, _ ty: Double) -> AffineMap { AffineMap(a: 1, b: 0, c: tx, d: 0, e: 1, f: ty) }

  /// `other` first, then `self`.
  public func after(_ other: AffineMap) -> AffineMap {
    AffineMap(
      a: a * other.a + b * other.d, b: a * other.b + b * other.e, c: a * other.c + b * other.f + c,
      d: d * other.a + e * other.d, e: d * other.b + e * other.e, f: d * other.c + e * other.f + f)
  }

  public var inverse: AffineMap {
    let det = a * e - b * d
    precondition(det != 0, "a degenerate affine map has no inverse")
    let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det)
    return AffineMap(a: ia, b: ib, c: -(ia * c + ib * f), d: id, e: ie, f: -(id * c + ie * f))
  }

  public func apply(_ x: Double, _ y: Double) -> (x: Double, y: Double) { (a * x + b * y + c, d * x + e * y + f) }

  /// Whether the map keeps rows as rows and columns as columns (scale, flip, translation).
  var isAxisAligned: Bool { b == 0 && d == 0 }
}

/// Where each output pixel reads the source: the inverse of a geometric plan,
/// sampled at output pixel centres. Shared by every entry of a sample (image, label,
/// frames, masks, flows) so that all of them move together.
struct Resampler {
  let source: (width: Int, height: Int)
  let output: (width: Int, height: Int)
  /// Output continuous coordinates → source continuous coordinates.
  let inverse: AffineMap

  /// Bilinear resampling of planar float data (`planes` planes of source width×height),
  /// as F.interpolate(mode="bilinear", align_corners=False) for a pure scale; points
  /// outside the source take `padding[plane]`. Writes `valid` (1 inside) when given.
  func bilinear(_ src: UnsafeBufferPointer<Float>, planes: Int, padding: [Float], into dst: UnsafeMutableBufferPointer<Float>,
                valid: UnsafeMutableBufferPointer<UInt8>? = nil) {
    let (sw, sh) = source
    let (ow, oh) = output
    let splane = sw * sh, oplane = ow * oh
    let (fw, fh) = (Double(sw), Double(sh))
    if inverse.isAxisAligned {
      // Separable: per-column and per-row taps computed once.
      let xs = axisTaps(count: ow, scale: inverse.a, offset: inverse.c, size: sw)
      let ys = axisTaps(count: oh, scale: inverse.e, offset: inverse.f, size: sh)
      for v in 0..<oh {
        let ty = ys[v]
        for u in 0..<ow {
          let tx = xs[u]
          let o = v * ow + u
          guard tx.inside && ty.inside else {
            for p in 0..<planes { dst[p * oplane + o] = padding[p] }
            valid?[o] = 0
            continue
          }
          valid?[o] = 1
          let (r0, r1) = (ty.i0 * sw, ty.i1 * sw)
          for p in 0..<planes {
            let base = p * splane
            let top = src[base + r0 + tx.i0] + (src[base + r0 + tx.i1] - src[base + r0 + tx.i0]) * tx.w
            let bottom = src[base + r1 + tx.i0] + (src[base + r1 + tx.i1] - src[base + r1 + tx.i0]) * tx.w
            dst[p * oplane + o] = top + (bottom - top) * ty.w
          }
        }
      }
      return
    }
    for v in 0..<oh {
      for u in 0..<ow {
        let (x, y) = inverse.apply(Double(u) + 0.5, Double(v) + 0.5)
        let o = v * ow + u
        guard x >= 0, y >= 0, x < fw, y < fh else {
          for p in 0..<planes { dst[p * oplane + o] = padding[p] }
          valid?[o] = 0
          continue
        }
        valid?[o] = 1
        let tx = Resampler.tap(x - 0.5, size: sw)
        let ty = Resampler.tap(y - 0.5, size: sh)
        let (r0, r1) = (ty.i0 * sw, ty.i1 * sw)
        for p in 0..<planes {
          let base = p * splane
          let top = src[base + r0 + tx.i0] + (src[base + r0 + tx.i1] - src[base + r0 + tx.i0]) * tx.w
          let bottom = src[base + r1 + tx.i0] + (src[base + r1 + tx.i1] - src[base + r1 + tx.i0]) * tx.w
          dst[p * oplane + o] = top + (bottom - top) * ty.w
        }
      }
    }
  }

  /// Bilinear resampling straight from interleaved 8-bit pixels (H×W×C) to planar floats.
  func bilinear(_ image: Image, padding: [Float], into dst: UnsafeMutableBufferPointer<Float>,
                valid: UnsafeMutableBufferPointer<UInt8>?) {
    let c = image.channels
    let (sw, sh) = source
    let (ow, oh) = output
    let oplane = ow * oh
    let (fw, fh) = (Double(sw), Double(sh))
    let xs = inverse.isAxisAligned ? axisTaps(count: ow, scale: inverse.a, offset: inverse.c, size: sw) : []
    let ys = inverse.isAxisAligned ? axisTaps(count: oh, scale: inverse.e, offset: inverse.f, size: sh) : []
    image.pixels.withUnsafeBufferPointer { src in
      for v in 0..<oh {
        for u in 0..<ow {
          let o = v * ow + u
          let tx: Tap, ty: Tap
          if inverse.isAxisAligned {
            (tx, ty) = (xs[u], ys[v])
          } else {
            let (x, y) = inverse.apply(Double(u) + 0.5, Double(v) + 0.5)
            let inside = x >= 0 && y >= 0 && x < fw && y < fh
            tx = inside ? Resampler.tap(x - 0.5, size: sw) : Tap.outside
            ty = inside ? Resampler.tap(y - 0.5, size: sh) : Tap.outside
          }
          guard tx.inside && ty.inside else {
            for p in 0..<c { dst[p * oplane + o] = padding[p] }
            valid?[o] = 0
            continue
          }
          valid?[o] = 1
          let (a, b) = ((ty.i0 * sw + tx.i0) * c, (ty.i0 * sw + tx.i1) * c)
          let (d, e) = ((ty.i1 * sw + tx.i0) * c, (ty.i1 * sw + tx.i1) * c)
          for p in 0..<c {
            let top = Float(src[a + p]) + (Float(src[b + p]) - Float(src[a + p])) * tx.w
            let bottom = Float(src[d + p]) + (Float(src[e + p]) - Float(src[d + p])) * tx.w
            dst[p * oplane + o] = top + (bottom - top) * ty.w
          }
        }
      }
    }
  }

  /// Nearest-neighbour resampling of interleaved 8-bit pixels (labels, masks, or images
  /// when asked): the source pixel containing the mapped output pixel centre, so labels
  /// are never blended. Output is interleaved like the input; outside takes `padding`.
  func nearest(_ image: Image, padding: [UInt8]) -> [UInt8] {
    let c = image.channels
    let (sw, sh) = source
    let (ow, oh) = output
    var out = [UInt8](repeating: 0, count: ow * oh * c)
    let xs = inverse.isAxisAligned ? (0..<ow).map { Resampler.cell(inverse.a * (Double($0) + 0.5) + inverse.c, size: sw) } : []
    let ys = inverse.isAxisAligned ? (0..<oh).map { Resampler.cell(inverse.e * (Double($0) + 0.5) + inverse.f, size: sh) } : []
    image.pixels.withUnsafeBufferPointer { src in
      out.withUnsafeMutableBufferPointer { dst in
        for v in 0..<oh {
          for u in 0..<ow {
            let ix: Int, iy: Int
            if inverse.isAxisAligned {
              (ix, iy) = (xs[u], ys[v])
            } else {
              let (x, y) = inverse.apply(Double(u) + 0.5, Double(v) + 0.5)
              (ix, iy) = (Resampler.cell(x, size: sw), Resampler.cell(y, size: sh))
            }
            let o = (v * ow + u) * c
            if ix < 0 || iy < 0 {
              for p in 0..<c { dst[o + p] = padding[p] }
            } else {
              let s = (iy * sw + ix) * c
              for p in 0..<c { dst[o + p] = src[s + p] }
            }
          }
        }
      }
    }
    return out
  }

  struct Tap {
    var i0: Int, i1: Int, w: Float, inside: Bool
    static let outside = Tap(i0: 0, i1: 0, w: 0, inside: false)
  }

  private func axisTaps(count: Int, scale: Double, offset: Double, size: Int) -> [Tap] {
    (0..<count).map { i in
      let s = scale * (Double(i) + 0.5) + offset
      return s >= 0 && s < Double(size) ? Resampler.tap(s - 0.5, size: size) : .outside
    }
  }

  /// The two neighbours and weight of index coordinate `s`, clamped at the borders as torch does.
  @inline(__always)
  static func tap(_ s: Double, size: Int) -> Tap {
    let clamped = max(0, s)
    let i0 = min(Int(clamped), size - 1)
    let i1 = min(i0 + 1, size - 1)
    return Tap(i0: i0, i1: i1, w: Float(clamped - Double(i0)), inside: true)
  }

  /// The pixel holding continuous coordinate `s`, or -1 outside 0..<size.
  @inline(__always)
  static func cell(_ s: Double, size: Int) -> Int {
    s >= 0 && s < Double(size) ? min(Int(s), size - 1) : -1
  }
}
