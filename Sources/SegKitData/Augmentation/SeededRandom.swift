import Foundation

/// SplitMix64: a small, fast generator whose whole state is one word, so any
/// (seed, epoch, sample) triple gives an independent, reproducible stream.
///
/// Uniform values and shuffles are computed here rather than with the standard
/// library's `random(in:using:)`/`shuffle(using:)`, whose algorithms may change
/// between Swift releases: a resumed or re-run training must see the same data.
public struct SeededRandom: RandomNumberGenerator, Sendable {
  public private(set) var state: UInt64

  public init(seed: UInt64) { state = seed }

  /// A stream derived from several values (seed, epoch, index…), well mixed.
  public init(_ parts: UInt64...) {
    var state: UInt64 = 0x5EC4_17D1_A7A0_0001
    for part in parts { state = SeededRandom.mix(state ^ SeededRandom.mix(part &+ 0x9E37_79B9_7F4A_7C15)) }
    self.state = state
  }

  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    return SeededRandom.mix(state)
  }

  static func mix(_ value: UInt64) -> UInt64 {
    var z = value
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform in [0, 1) with 53 random bits.
  public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

  /// Uniform in [low, high).
  public mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * unit() }

  /// Uniform integer in 0..<bound (Lemire's multiply-shift, with rejection for exactness).
  public mutating func below(_ bound: Int) -> Int {
    precondition(bound > 0, "below(_:) needs a positive bound")
    let b = UInt64(bound)
    var product = next().multipliedFullWidth(by: b)
    if product.low < b {
      let threshold = (0 &- b) % b
      while product.low < threshold { product = next().multipliedFullWidth(by: b) }
    }
    return Int(product.high)
  }

  /// True with probability `p`.
  public mutating func chance(_ p: Double) -> Bool { p > 0 && unit() < p }

  /// A standard normal sample (Box–Muller).
  public mutating func normal() -> Double {
    let u = max(unit(), 0x1p-60)
    return (-2 * log(u)).squareRoot() * cos(2 * Double.pi * unit())
  }

  /// A permutation of 0..<count (Fisher–Yates).
  public mutating func permutation(_ count: Int) -> [Int] {
    var order = Array(0..<count)
    var i = count - 1
    while i > 0 {
      order.swapAt(i, below(i + 1))
      i -= 1
    }
    return order
  }
}
