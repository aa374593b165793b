import COpticalFlow

/// Dense optical flow between two frames, for flow-guided warping of features or masks.
public enum OpticalFlow {
  /// OpenCV's DIS presets: faster means coarser.
  public enum Preset: Int32, Sendable, CaseIterable {
    case ultrafast = 0, fast = 1, medium = 2

    /// What `segkit flow` uses unless told: accuracy first. On a 120×160 pair `fast`
    /// (one pyramid level of 8×8 patches there, then a variational smoothing) returned
    /// (−5.0, 3.5) px for a small object's (−6, 4); `medium` (−6.0, 4.0) in about the same time.
    public static let `default` = Preset.medium
  }

  /// DIS flow (OpenCV) from `from` to `to` (same size; gray, RGB or RGBA), in FlowField's
  /// convention: from(x) ≈ to(x + F(x)). `tensor()` gives it as [2, H, W] float32.
  /// `upscale` (1…8) enlarges both frames that many times before DIS and brings the
  /// flow back: DIS's patches are 8–12 pixels and its pyramid stops at a quarter of the
  /// frame, so on frames of a few hundred pixels it sees objects only as blurred patches.
  public static func dis(from: Image, to: Image, preset: Preset = .default, upscale: Int = 1) throws -> FlowField {
    guard from.width == to.width, from.height == to.height, from.channels == to.channels else {
      throw DataError("optical flow needs frames of one size and kind: \(from.width)x\(from.height)x\(from.channels) vs \(to.width)x\(to.height)x\(to.channels)")
    }
    guard (1...8).contains(upscale) else { throw DataError("the DIS upscale factor must be 1 to 8, got \(upscale)") }
    let plane = from.width * from.height
    var flow = [Float](repeating: 0, count: 2 * plane)
    let status = from.pixels.withUnsafeBufferPointer { a in
      to.pixels.withUnsafeBufferPointer { b in
        flow.withUnsafeMutableBufferPointer { out in
          of_dis(a.baseAddress, b.baseAddress, Int32(from.width), Int32(from.height), Int32(from.channels),
                 of_preset(UInt32(preset.rawValue)), Int32(upscale), out.baseAddress)
        }
      }
    }
    guard status == 0 else { throw DataError("optical flow: \(String(cString: of_last_error()))") }
    return try FlowField(width: from.width, height: from.height, values: flow)
  }
}
