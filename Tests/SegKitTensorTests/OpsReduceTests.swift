import SegKitTensor
import SegKitTestSupport
import XCTest

/// Reductions, max/min with indices, top-k, sorting and counting against PyTorch.
final class OpsReduceTests: XCTestCase {
  static let oracle = Result {
    try OracleTensors.run("""
      x = save("x", torch.randn(2, 3, 4))
      n = save("n", torch.randint(-3, 4, (2, 3, 4)))
      n32 = save("n32", torch.randint(1, 4, (2, 3)).to(torch.int32))
      m = save("m", torch.rand(2, 3, 4) > 0.3)
      save("sum", x.sum()); save("sum1", x.sum(1)); save("sum02", x.sum((0, 2)))
      save("sum_keep", x.sum(-1, keepdim=True)); save("sum_all_keep", x.sum((0, 1, 2), keepdim=True))
      save("sum_int", n.sum()); save("sum_int_dim", n.sum(1)); save("sum_bool", m.sum()); save("sum_i32", n32.sum(0))
      save("mean", x.mean()); save("mean1", x.mean(1)); save("mean_keep", x.mean((0, 2), keepdim=True))
      save("mean_last", x.mean(-1))
      save("prod", x.prod()); save("prod02", x.prod(2).prod(0)); save("prod02_keep", x.prod(2, keepdim=True).prod(0, keepdim=True))
      save("prod1", x.prod(1)); save("prod_i32", n32.prod()); save("prod_i32_dim", n32.prod(1))
      save("amax", x.amax()); save("amin", x.amin()); save("amax12", x.amax((1, 2)))
      save("amin_keep", x.amin(0, keepdim=True)); save("amax_int", n.amax(-1))
      save("var", x.var()); save("std", x.std()); save("var1", x.var(1)); save("std_keep", x.std((0, 2), keepdim=True))
      v, i = x.max(1); save("max1_v", v); save("max1_i", i)
      v, i = x.min(2, keepdim=True); save("min2_v", v); save("min2_i", i)
      v, i = n.max(-1); save("nmax_v", v); save("nmax_i", i)
      save("argmax", x.argmax()); save("argmax1", x.argmax(1)); save("argmin_keep", x.argmin(-1, keepdim=True))
      save("argmin", x.argmin())
      v, i = x.topk(2); save("topk_v", v); save("topk_i", i)
      v, i = x.topk(2, largest=False); save("topk_small_v", v); save("topk_small_i", i)
      v, i = x.topk(1, 0); save("topk0_v", v); save("topk0_i", i)
      v, i = x.sort(); save("sort_v", v); save("sort_i", i)
      v, i = x.sort(1, descending=True); save("sort_desc_v", v); save("sort_desc_i", i)
      save("all", m.all()); save("any", m.any()); save("all1", m.all(1)); save("any_keep", m.any(2, keepdim=True))
      save("all_02", m.all(2).all(0)); save("any_float", x.gt(1.5).any()); save("all_float", x.all())
      b = save("bins", torch.tensor([0, 3, 1, 3, 3, 5]))
      bw = save("bin_w", torch.tensor([0.5, 1.0, 2.0, 0.25, 0.25, 3.0]))
      save("bincount", b.bincount()); save("bincount_w", b.bincount(bw)); save("bincount_min", b.bincount(minlength=8))
      """)
  }

  func oracle() throws -> OracleTensors { try Self.oracle.get() }

  func testSum() throws {
    let o = try oracle()
    let x = try o["x"], n = try o["n"]
    try o.expect(try x.sum(), "sum")
    try o.expect(try x.sum(dim: 1), "sum1")
    try o.expect(try x.sum(dims: [0, 2]), "sum02")
    try o.expect(try x.sum(dims: [2, 0]), "sum02")
    try o.expect(try x.sum(dim: -1, keepDim: true), "sum_keep")
    try o.expect(try x.sum(keepDim: true), "sum_all_keep")
    try o.expect(try n.sum(), "sum_int")
    try o.expect(try n.sum(dim: 1), "sum_int_dim")
    try o.expect(try o["m"].sum(), "sum_bool")
    try o.expect(try o["n32"].sum(dim: 0), "sum_i32")
  }

  func testMeanProd() throws {
    let o = try oracle()
    let x = try o["x"], n32 = try o["n32"]
    try o.expect(try x.mean(), "mean")
    try o.expect(try x.mean(dim: 1), "mean1")
    try o.expect(try x.mean(dims: [0, 2], keepDim: true), "mean_keep")
    try o.expect(try x.mean(dim: -1), "mean_last")
    try o.expect(try x.prod(), "prod")
    try o.expect(try x.prod(dims: [0, 2]), "prod02")
    try o.expect(try x.prod(dims: [2, 0]), "prod02")
    try o.expect(try x.prod(dims: [0, -1], keepDim: true), "prod02_keep")
    try o.expect(try x.prod(dims: [1]), "prod1")
    try o.expect(try n32.prod(), "prod_i32")
    try o.expect(try n32.prod(dims: [1]), "prod_i32_dim")
  }

  func testMaxMinVarStd() throws {
    let o = try oracle()
    let x = try o["x"]
    try o.expect(try x.max(), "amax")
    try o.expect(try x.min(), "amin")
    try o.expect(try x.max(dims: [1, 2]), "amax12")
    try o.expect(try x.min(dims: [0], keepDim: true), "amin_keep")
    try o.expect(try o["n"].max(dims: [-1]), "amax_int")
    try o.expect(try x.variance(), "var")
    try o.expect(try x.std(), "std")
    try o.expect(try x.variance(dims: [1]), "var1")
    try o.expect(try x.std(dims: [0, 2], keepDim: true), "std_keep")
  }

  func testValuesAndIndices() throws {
    let o = try oracle()
    let x = try o["x"], n = try o["n"]
    var r = try x.max(dim: 1)
    try o.expect(r.values, "max1_v")
    try o.expect(r.indices, "max1_i")
    r = try x.min(dim: 2, keepDim: true)
    try o.expect(r.values, "min2_v")
    try o.expect(r.indices, "min2_i")
    r = try n.max(dim: -1)
    try o.expect(r.values, "nmax_v")
    try o.expect(r.indices, "nmax_i")
    try o.expect(try x.argmax(), "argmax")
    try o.expect(try x.argmax(dim: 1), "argmax1")
    try o.expect(try x.argmin(dim: -1, keepDim: true), "argmin_keep")
    try o.expect(try x.argmin(), "argmin")
  }

  func testTopkAndSort() throws {
    let o = try oracle()
    let x = try o["x"]
    var r = try x.topk(2)
    try o.expect(r.values, "topk_v")
    try o.expect(r.indices, "topk_i")
    r = try x.topk(2, largest: false)
    try o.expect(r.values, "topk_small_v")
    try o.expect(r.indices, "topk_small_i")
    r = try x.topk(1, dim: 0)
    try o.expect(r.values, "topk0_v")
    try o.expect(r.indices, "topk0_i")
    r = try x.sort()
    try o.expect(r.values, "sort_v")
    try o.expect(r.indices, "sort_i")
    r = try x.sort(dim: 1, descending: true)
    try o.expect(r.values, "sort_desc_v")
    try o.expect(r.indices, "sort_desc_i")
  }

  func testAllAny() throws {
    let o = try oracle()
    let m = try o["m"], x = try o["x"]
    try o.expect(try m.all(), "all")
    try o.expect(try m.any(), "any")
    try o.expect(try m.all(dims: [1]), "all1")
    try o.expect(try m.any(dims: [2], keepDim: true), "any_keep")
    try o.expect(try m.all(dims: [0, 2]), "all_02")
    try o.expect(try (x .> 1.5).any(), "any_float")
    try o.expect(try x.all(), "all_float")
  }

  func testBincount() throws {
    let o = try oracle()
    let bins = try o["bins"]
    try o.expect(try bins.bincount(), "bincount")
    try o.expect(try bins.bincount(weights: try o["bin_w"]), "bincount_w")
    try o.expect(try bins.bincount(minLength: 8), "bincount_min")
  }
}
