import SegKitTensor
import SegKitTestSupport
import XCTest

/// interpolate, grid_sample and pad against torch.nn.functional.
final class OpsResampleTests: XCTestCase {
  static let oracle = Result {
    try OracleTensors.run("""
      x = save("x", torch.randn(1, 2, 5, 7))
      for ac in (False, True):
          for mode in ("bilinear", "bicubic"):
              save(f"{mode}_up_{ac}", F.interpolate(x, size=(8, 9), mode=mode, align_corners=ac))
              save(f"{mode}_down_{ac}", F.interpolate(x, size=(3, 4), mode=mode, align_corners=ac))
      for mode in ("nearest", "nearest-exact"):
          save(f"{mode}_up", F.interpolate(x, size=(8, 9), mode=mode))
          save(f"{mode}_down", F.interpolate(x, size=(3, 4), mode=mode))
      for s in (0.5, 2.0, 1.75):
          for mode in ("bilinear", "bicubic", "nearest"):
              save(f"scale_{mode}_{s}", F.interpolate(x, scale_factor=s, mode=mode))
          save(f"scale_bilinear_ac_{s}", F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=True))

      g = save("g", torch.randn(1, 2, 4, 5))
      grid = save("grid", torch.rand(1, 3, 4, 2) * 2.6 - 1.3)
      for mode in ("bilinear", "nearest", "bicubic"):
          for pad in ("zeros", "border", "reflection"):
              for ac in (False, True):
                  save(f"gs_{mode}_{pad}_{ac}", F.grid_sample(g, grid, mode=mode, padding_mode=pad, align_corners=ac))

      q = save("q", torch.randn(1, 2, 3, 4))
      save("pad_const", F.pad(q, (1, 2), value=0.5))
      save("pad_const4", F.pad(q, (1, 1, 2, 0)))
      save("pad_crop", F.pad(q, (-1, 1, 0, -1)))
      save("pad_const_channels", F.pad(q, (0, 0, 0, 0, 1, 1), value=-1))
      save("pad_reflect", F.pad(q, (2, 1, 1, 2), mode="reflect"))
      save("pad_replicate", F.pad(q, (2, 2, 1, 0), mode="replicate"))
      save("pad_circular", F.pad(q, (1, 2, 2, 1), mode="circular"))
      save("pad_reflect_3d", F.pad(q[0], (3, 1), mode="reflect"))
      """)
  }

  func oracle() throws -> OracleTensors { try Self.oracle.get() }

  func testInterpolateToSize() throws {
    let o = try oracle()
    let x = try o["x"]
    for ac in [false, true] {
      for (mode, name) in [(Interpolation.bilinear, "bilinear"), (.bicubic, "bicubic")] {
        try o.expect(try x.interpolate(size: [8, 9], mode: mode, alignCorners: ac), "\(name)_up_\(ac ? "True" : "False")")
        try o.expect(try x.interpolate(size: [3, 4], mode: mode, alignCorners: ac), "\(name)_down_\(ac ? "True" : "False")")
      }
    }
    for (mode, name) in [(Interpolation.nearest, "nearest"), (.nearestExact, "nearest-exact")] {
      try o.expect(try x.interpolate(size: [8, 9], mode: mode), "\(name)_up")
      try o.expect(try x.interpolate(size: [3, 4], mode: mode), "\(name)_down")
    }
  }

  func testInterpolateByScaleFactor() throws {
    let o = try oracle()
    let x = try o["x"]
    for s in [0.5, 2.0, 1.75] {
      for (mode, name) in [(Interpolation.bilinear, "bilinear"), (.bicubic, "bicubic"), (.nearest, "nearest")] {
        try o.expect(try x.interpolate(scaleFactor: s, mode: mode), "scale_\(name)_\(s)")
      }
      try o.expect(try x.interpolate(scaleFactor: s, mode: .bilinear, alignCorners: true), "scale_bilinear_ac_\(s)")
    }
  }

  func testGridSample() throws {
    let o = try oracle()
    let g = try o["g"], grid = try o["grid"]
    for (mode, m) in [(Interpolation.bilinear, "bilinear"), (.nearest, "nearest"), (.bicubic, "bicubic")] {
      for (padding, p) in [(GridPadding.zeros, "zeros"), (.border, "border"), (.reflection, "reflection")] {
        for ac in [false, true] {
          try o.expect(try g.gridSample(grid: grid, mode: mode, padding: padding, alignCorners: ac),
                       "gs_\(m)_\(p)_\(ac ? "True" : "False")")
        }
      }
    }
  }

  func testPad() throws {
    let o = try oracle()
    let q = try o["q"]
    try o.expect(try q.pad([1, 2], value: 0.5), "pad_const")
    try o.expect(try q.pad([1, 1, 2, 0]), "pad_const4")
    try o.expect(try q.pad([-1, 1, 0, -1]), "pad_crop")
    try o.expect(try q.pad([0, 0, 0, 0, 1, 1], value: -1), "pad_const_channels")
    try o.expect(try q.pad([2, 1, 1, 2], mode: .reflect), "pad_reflect")
    try o.expect(try q.pad([2, 2, 1, 0], mode: .replicate), "pad_replicate")
    try o.expect(try q.pad([1, 2, 2, 1], mode: .circular), "pad_circular")
    try o.expect(try q[0].pad([3, 1], mode: .reflect), "pad_reflect_3d")
  }
}
