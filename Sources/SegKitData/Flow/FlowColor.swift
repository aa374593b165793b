import Foundation

/// Renders flow with the Middlebury colour wheel (Baker et al., 2007): the hue is
/// the direction, the saturation the length relative to `maximum` (the field's
/// largest displacement unless given); lengths beyond it are darkened. Unknown
/// values (not finite, or above 1e9) are black.
public enum FlowColor {
  /// The wheel's 55 colours: red → yellow → green → cyan → blue → magenta → red in
  /// 15, 6, 4, 11, 13 and 6 steps, as the Middlebury code lays them out.
  static let wheel: [(Double, Double, Double)] = {
    var colours: [(Double, Double, Double)] = []
    func ramp(_ steps: Int, _ colour: (Double) -> (Double, Double, Double)) {
      for i in 0..<steps { colours.append(colour((255 * Double(i) / Double(steps)).rounded(.down))) }
    }
    ramp(15) { (255, $0, 0) }
    ramp(6) { (255 - $0, 255, 0) }
    ramp(4) { (0, 255, $0) }
    ramp(11) { (0, 255 - $0, 255) }
    ramp(13) { ($0, 0, 255) }
    ramp(6) { (255, 0, 255 - $0) }
    return colours
  }()

  static func isKnown(_ u: Float, _ v: Float) -> Bool { u.isFinite && v.isFinite && abs(u) <= 1e9 && abs(v) <= 1e9 }

  public static func render(_ flow: FlowField, maximum: Double? = nil) -> Image {
    let pixels = flow.width * flow.height
    var largest = 0.0
    for i in 0..<pixels where isKnown(flow.values[i], flow.values[pixels + i]) {
      largest = max(largest, hypot(Double(flow.values[i]), Double(flow.values[pixels + i])))
    }
    let scale = 1 / max(maximum ?? largest, 1e-5)
    var image = Image(width: flow.width, height: flow.height, channels: 3)
    let count = Double(wheel.count)
    for i in 0..<pixels {
      let (u, v) = (flow.values[i], flow.values[pixels + i])
      guard isKnown(u, v) else { continue }
      let (x, y) = (Double(u) * scale, Double(v) * scale)
      let radius = hypot(x, y)
      let position = (atan2(-y, -x) / .pi + 1) / 2 * (count - 1)
      let k0 = min(Int(position.rounded(.down)), wheel.count - 1)
      let k1 = (k0 + 1) % wheel.count
      let f = position - Double(k0)
      let (a, b) = (wheel[k0], wheel[k1])
      for (c, pair) in [(a.0, b.0), (a.1, b.1), (a.2, b.2)].enumerated() {
        var colour = ((1 - f) * pair.0 + f * pair.1) / 255
        colour = radius <= 1 ? 1 - radius * (1 - colour) : colour * 0.75
        image.pixels[i * 3 + c] = UInt8(max(0, min(255, (255 * colour).rounded(.down))))
      }
    }
    return image
  }
}
