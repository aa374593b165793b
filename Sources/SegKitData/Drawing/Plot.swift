import Foundation

/// A small chart drawn straight into an RGB image: axes with round tick values,
/// one coloured series per curve (points joined in order, or points alone), a title
/// and a legend. For reports such as mIoU against frames per second.
public struct Plot {
  public struct Series {
    public var name: String
    public var color: [UInt8]
    public var points: [(x: Double, y: Double)]
    /// Whether consecutive points are joined by a line.
    public var joined: Bool

    public init(name: String, color: [UInt8], points: [(x: Double, y: Double)], joined: Bool = true) {
      self.name = name
      self.color = color
      self.points = points
      self.joined = joined
    }
  }

  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var series: [Series] = []
  public var width = 720
  public var height = 480

  public init(title: String, xLabel: String, yLabel: String) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
  }

  /// Round tick values covering [low, high], about `count` of them.
  static func ticks(_ low: Double, _ high: Double, count: Int = 5) -> [Double] {
    guard high > low, low.isFinite, high.isFinite else { return [low] }
    let raw = (high - low) / Double(count)
    let magnitude = pow(10, floor(log10(raw)))
    let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    var values: [Double] = []
    var value = (low / step).rounded(.up) * step
    while value <= high + step * 1e-9 {
      values.append(value)
      value += step
    }
    return values
  }

  static func label(_ value: Double) -> String {
    let text = String(format: abs(value) >= 100 ? "%.0f" : (abs(value) >= 10 ? "%.1f" : "%.2f"), value)
    return text.contains(".") ? String(text.reversed().drop { $0 == "0" }.drop { $0 == "." }.reversed()) : text
  }

  public func render() -> Image {
    var image = Image(width: width, height: height, channels: 3, filling: 255)
    let (left, right, top, bottom) = (70, width - 200, 40, height - 50)
    let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
    var (xLow, xHigh) = (all.map(\.x).min() ?? 0, all.map(\.x).max() ?? 1)
    var (yLow, yHigh) = (all.map(\.y).min() ?? 0, all.map(\.y).max() ?? 1)
    // A margin of 5 % so that no point sits on the frame.
    let (xPad, yPad) = (max((xHigh - xLow) * 0.05, 1e-6), max((yHigh - yLow) * 0.05, 1e-6))
    (xLow, xHigh, yLow, yHigh) = (xLow - xPad, xHigh + xPad, yLow - yPad, yHigh + yPad)
    func px(_ x: Double) -> Double { Double(left) + (x - xLow) / (xHigh - xLow) * Double(right - left) }
    func py(_ y: Double) -> Double { Double(bottom) - (y - yLow) / (yHigh - yLow) * Double(bottom - top) }
    let gray: [UInt8] = [225, 225, 225], black: [UInt8] = [30, 30, 30]
    for tick in Self.ticks(xLow, xHigh) {
      let x = Int(px(tick).rounded())
      image.fill(x: x, y: top, width: 1, height: bottom - top, color: gray)
      let text = Self.label(tick)
      BitmapFont.draw(text, into: &image, x: x - BitmapFont.size(of: text).width / 2, y: bottom + 6, color: black)
    }
    for tick in Self.ticks(yLow, yHigh) {
      let y = Int(py(tick).rounded())
      image.fill(x: left, y: y, width: right - left, height: 1, color: gray)
      let text = Self.label(tick)
      BitmapFont.draw(text, into: &image, x: left - 6 - BitmapFont.size(of: text).width, y: y - 3, color: black)
    }
    image.strokeRectangle(x: left, y: top, width: right - left + 1, height: bottom - top + 1, color: black)
    BitmapFont.draw(title, into: &image, x: left, y: 12, color: black, scale: 2)
    BitmapFont.draw(xLabel, into: &image, x: (left + right - BitmapFont.size(of: xLabel).width) / 2, y: bottom + 24, color: black)
    BitmapFont.draw(yLabel, into: &image, x: 8, y: top - 14, color: black)
    for (index, curve) in series.enumerated() {
      let points = curve.points.filter { $0.x.isFinite && $0.y.isFinite }
      if curve.joined {
        for (a, b) in zip(points, points.dropFirst()) {
          image.drawLine(from: (px(a.x), py(a.y)), to: (px(b.x), py(b.y)), color: curve.color, thickness: 2)
        }
      }
      for point in points {
        image.fill(x: Int(px(point.x).rounded()) - 3, y: Int(py(point.y).rounded()) - 3, width: 7, height: 7, color: curve.color)
      }
      let y = top + 10 + index * 18
      image.fill(x: right + 16, y: y, width: 12, height: 7, color: curve.color)
      BitmapFont.draw(curve.name, into: &image, x: right + 34, y: y, color: black)
    }
    return image
  }
}
