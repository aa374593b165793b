import Foundation

/// How one frame of a clip moves against the others, drawn per frame (the clip-wide
/// scale, crop and flip are the loader's `Augmentation`): XMem's per-frame
/// `RandomAffine` (rotation, scale, shear about the centre) and, with
/// `deformationProbability`, its random thin-plate-spline warp (`controlPoints` points
/// displaced by N(0, `deformation`) of the frame size). The image is resampled
/// bilinearly, padded with `imagePadding`; the label by nearest neighbour, padded with 0.
public struct FrameJitter: Sendable, Equatable {
  public var rotation = 0.0
  public var scale: ClosedRange<Double> = 1...1
  public var shear = 0.0
  public var deformationProbability = 0.0
  public var deformation = 0.0
  public var controlPoints = 12
  /// ImageNet's mean in 0–255, XMem's `fill=im_mean`.
  public var imagePadding: [UInt8] = [124, 116, 104]

  public init() {}

  /// XMem's jitter between the frames of a video clip (stage 3): ±15° rotation, ±10° shear.
  public static let videoClip: FrameJitter = {
    var jitter = FrameJitter()
    (jitter.rotation, jitter.shear) = (15, 10)
    return jitter
  }()

  /// XMem's static-image sequences (stage 0): ±20°, scale 0.9–1.1, ±10° shear, and a
  /// thin-plate warp of 12 points by σ 0.02 on a third of the frames.
  public static let staticImage: FrameJitter = {
    var jitter = FrameJitter()
    (jitter.rotation, jitter.scale, jitter.shear) = (20, 0.9...1.1, 10)
    (jitter.deformationProbability, jitter.deformation) = (0.33, 0.02)
    return jitter
  }()

  public var isIdentity: Bool {
    rotation == 0 && scale == 1...1 && shear == 0 && (deformationProbability == 0 || deformation == 0)
  }

  /// The image and label moved together by one draw from `random`.
  public func apply(image: Image, label: Image, random: inout SeededRandom) throws -> (image: Image, label: Image) {
    guard image.width == label.width, image.height == label.height, image.channels == 3, label.channels == 1 else {
      throw DataError("frame jitter needs an RGB image and a one-channel label of its size")
    }
    guard !isIdentity else { return (image, label) }
    let (w, h) = (Double(image.width), Double(image.height))
    let angle = random.uniform(-rotation, rotation) * .pi / 180
    let factor = random.uniform(scale.lowerBound, scale.upperBound)
    let shearAngle = random.uniform(-shear, shear) * .pi / 180
    // About the centre: rotate and shear, then scale (torchvision's RandomAffine without translation).
    let (cx, cy) = (w / 2, h / 2)
    let linear = AffineMap(a: cos(angle), b: -sin(angle + shearAngle), c: 0, d: sin(angle), e: cos(angle + shearAngle), f: 0)
    let forward = AffineMap.translation(cx, cy).after(AffineMap.scale(factor, factor)).after(linear).after(AffineMap.translation(-cx, -cy))
    let inverse = forward.inverse
    let spline = random.chance(deformationProbability) ? ThinPlateSpline.random(points: controlPoints, sigma: deformation, random: &random) : nil

    var pixels = [UInt8](repeating: 0, count: image.pixels.count)
    var labels = [UInt8](repeating: 0, count: label.pixels.count)
    let (sw, sh) = (image.width, image.height)
    for v in 0..<sh {
      for u in 0..<sw {
        // Output centre → (deformed) → source of the affine.
        var (x, y) = (Double(u) + 0.5, Double(v) + 0.5)
        if let spline {
          let (nx, ny) = spline.apply(x / w, y / h)
          (x, y) = (nx * w, ny * h)
        }
        (x, y) = inverse.apply(x, y)
        let o = v * sw + u
        guard x >= 0, y >= 0, x < w, y < h else {
          for p in 0..<3 { pixels[o * 3 + p] = imagePadding[p] }
          continue
        }
        labels[o] = label.pixels[min(sh - 1, Int(y)) * sw + min(sw - 1, Int(x))]
        let (fx, fy) = (max(0, x - 0.5), max(0, y - 0.5))
        let (x0, y0) = (min(sw - 1, Int(fx)), min(sh - 1, Int(fy)))
        let (x1, y1) = (min(sw - 1, x0 + 1), min(sh - 1, y0 + 1))
        let (wx, wy) = (fx - Double(x0), fy - Double(y0))
        for p in 0..<3 {
          func at(_ xx: Int, _ yy: Int) -> Double { Double(image.pixels[(yy * sw + xx) * 3 + p]) }
          let top = at(x0, y0) + (at(x1, y0) - at(x0, y0)) * wx
          let bottom = at(x0, y1) + (at(x1, y1) - at(x0, y1)) * wx
          pixels[o * 3 + p] = UInt8(max(0, min(255, (top + (bottom - top) * wy).rounded())))
        }
      }
    }
    return (try Image(width: sw, height: sh, channels: 3, pixels: pixels), try Image(width: sw, height: sh, channels: 1, pixels: labels))
  }
}

/// A thin-plate spline in unit coordinates: f(p) = a + B·p + Σ wᵢ U(|p − cᵢ|), U(r) = r² log r²,
/// interpolating the control points exactly.
struct ThinPlateSpline {
  let centres: [(x: Double, y: Double)]
  /// Per output coordinate: n weights then the affine part (a, bx, by).
  let coefficients: [[Double]]

  /// Maps the displaced points back onto random points (output → source, as a resampler
  /// reads), the points at distinct random rows and columns as XMem picks them.
  static func random(points: Int, sigma: Double, random: inout SeededRandom) -> ThinPlateSpline? {
    let n = max(3, points)
    let xs = Array(random.permutation(1000).prefix(n)).map { Double($0) / 1000 }
    let ys = Array(random.permutation(1000).prefix(n)).map { Double($0) / 1000 }
    let source = zip(xs, ys).map { (x: $0, y: $1) }
    let displaced = source.map { (x: $0.x + sigma * random.normal(), y: $0.y + sigma * random.normal()) }
    return ThinPlateSpline(from: displaced, to: source)
  }

  /// The spline taking each `from` point to its `to` point; nil when the points are degenerate.
  init?(from: [(x: Double, y: Double)], to: [(x: Double, y: Double)]) {
    let n = from.count
    let size = n + 3
    var matrix = [[Double]](repeating: [Double](repeating: 0, count: size), count: size)
    for i in 0..<n {
      for j in 0..<n { matrix[i][j] = Self.kernel(from[i], from[j]) }
      (matrix[i][n], matrix[i][n + 1], matrix[i][n + 2]) = (1, from[i].x, from[i].y)
      (matrix[n][i], matrix[n + 1][i], matrix[n + 2][i]) = (1, from[i].x, from[i].y)
    }
    var solutions: [[Double]] = []
    for targets in [to.map(\.x), to.map(\.y)] {
      guard let solution = Self.solve(matrix, targets + [0, 0, 0]) else { return nil }
      solutions.append(solution)
    }
    centres = from
    coefficients = solutions
  }

  static func kernel(_ p: (x: Double, y: Double), _ q: (x: Double, y: Double)) -> Double {
    let r2 = (p.x - q.x) * (p.x - q.x) + (p.y - q.y) * (p.y - q.y)
    return r2 > 0 ? r2 * log(r2) : 0
  }

  func apply(_ x: Double, _ y: Double) -> (Double, Double) {
    let n = centres.count
    var out = [0.0, 0.0]
    for k in 0..<2 {
      let c = coefficients[k]
      var value = c[n] + c[n + 1] * x + c[n + 2] * y
      for i in 0..<n { value += c[i] * Self.kernel((x, y), centres[i]) }
      out[k] = value
    }
    return (out[0], out[1])
  }

  /// Gaussian elimination with partial pivoting; nil for a singular system.
  static func solve(_ a: [[Double]], _ b: [Double]) -> [Double]? {
    var (m, rhs) = (a, b)
    let n = b.count
    for column in 0..<n {
      guard let pivot = (column..<n).max(by: { abs(m[$0][column]) < abs(m[$1][column]) }), abs(m[pivot][column]) > 1e-12 else { return nil }
      m.swapAt(column, pivot)
      rhs.swapAt(column, pivot)
      for row in (column + 1)..<n {
        let factor = m[row][column] / m[column][column]
        guard factor != 0 else { continue }
        for k in column..<n { m[row][k] -= factor * m[column][k] }
        rhs[row] -= factor * rhs[column]
      }
    }
    var x = [Double](repeating: 0, count: n)
    for row in stride(from: n - 1, through: 0, by: -1) {
      var sum = rhs[row]
      for k in (row + 1)..<n { sum -= m[row][k] * x[k] }
      x[row] = sum / m[row][row]
    }
    return x
  }
}
