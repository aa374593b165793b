import COpticalFlow

/// Dense optical flow between two frames, for flow-guided warping of features or masks.
public enum OpticalFlow {
  /// OpenCV's DIS presets: faster means coarser.
  public enum Preset: Int32, Sendable, CaseIterable {
    case ultrafast = 0, fast = 1, medium = 2
  }

  /// DIS flow (OpenCV) from `from` to `to` (same size; gray, RGB or RGBA), in FlowField's
  /// convention: from(x) ≈ to(x + F(x)). `tensor()` gives it as [2, H, W] float32.
  public static func dis(from: Image, to: Image, preset: Preset = .fast) throws -> FlowField {
    guard from.width == to.width, from.height == to.height, from.channels == to.channels else {
      throw DataError("optical flow needs frames of one size and kind: \(from.width)x\(from.height)x\(from.channels) vs \(to.width)x\(to.height)x\(to.channels)")
    }
    let plane = from.width * from.height
    var flow = [Float](repeating: 0, count: 2 * plane)
    let status = from.pixels.withUnsafeBufferPointer { a in
      to.pixels.withUnsafeBufferPointer { b in
        flow.withUnsafeMutableBufferPointer { out in
          of_dis(a.baseAddress, b.baseAddress, Int32(from.width), Int32(from.height), Int32(from.channels),
                 of_preset(UInt32(preset.rawValue)), out.baseAddress)
        }
      }
    }
    guard status == 0 else { throw DataError("optical flow: \(String(cString: of_last_error()))") }
    return try FlowField(width: from.width, height: from.height, values: flow)
  }
}
