import SegKitTensor
import SegKitTestSupport
import XCTest

/// Shape, view and indexing operations against PyTorch.
final class OpsShapeTests: XCTestCase {
  static let oracle = Result {
    try OracleTensors.run("""
      x = save("x", torch.randn(2, 3, 4))
      save("reshape", x.reshape(4, 6))
      save("reshape_infer", x.reshape(-1, 4))
      save("view", x.view(6, 4))
      save("permute", x.permute(2, 0, 1))
      save("transpose", x.transpose(0, 2))
      save("transpose_contiguous", x.transpose(0, 2).contiguous())
      save("slice", x[:, 1:3])
      save("slice_step", x[..., ::2])
      save("slice_negative", x[:, -2:])
      save("slice_clamped", x[:, 1:100])
      save("narrow", x.narrow(2, 1, 2))
      save("narrow_negative", x.narrow(1, -2, 2))
      save("select", x.select(1, 2))
      save("select_negative", x.select(-1, -1))
      save("subscript", x[1])
      idx = save("idx", torch.tensor([3, 0, 3]))
      save("index_select", x.index_select(2, idx))
      save("masked_select", x.masked_select(x > 0))
      gidx = save("gidx", torch.randint(0, 4, (2, 3, 2)))
      save("gather", x.gather(2, gidx))
      y = save("y", torch.randn(2, 1, 4))
      save("cat", torch.cat([x, y, x], 1))
      save("cat_negative", torch.cat([x, x], -1))
      a = save("a", torch.arange(6).reshape(2, 3))
      b = save("b", torch.arange(6, 12).reshape(2, 3))
      save("stack0", torch.stack([a, b]))
      save("stack1", torch.stack([a, b], 1))
      save("stack_last", torch.stack([a, b], -1))
      for i, part in enumerate(torch.split(x, 3, 2)): save(f"split3_{i}", part)
      for i, part in enumerate(torch.split(x, [1, 3], 2)): save(f"split_sizes_{i}", part)
      v = save("v", torch.arange(5.0))
      for i, part in enumerate(torch.chunk(v, 3)): save(f"chunk3_{i}", part)
      for i, part in enumerate(torch.chunk(x, 3, 2)): save(f"chunk_x_{i}", part)
      s = save("s", torch.randn(1, 3, 1, 2))
      save("squeeze", s.squeeze())
      save("squeeze0", s.squeeze(0))
      save("squeeze1", s.squeeze(1))
      save("squeeze_neg", s.squeeze(-2))
      save("unsqueeze0", x.unsqueeze(0))
      save("unsqueeze_last", x.unsqueeze(-1))
      save("unsqueeze2", x.unsqueeze(2))
      c = save("c", torch.randn(3, 1))
      save("expand", c.expand(3, 4))
      save("expand_new", c.expand(2, -1, 4))
      save("flip", x.flip([0, 2]))
      save("flip_last", x.flip([-1]))
      save("flatten", x.flatten())
      save("flatten1", x.flatten(1))
      save("flatten01", x.flatten(0, 1))
      save("flatten_scalar", torch.tensor(2.0).flatten())
      save("repeat", c.repeat(2, 3))
      save("repeat_more", c.repeat(2, 1, 2))
      save("as_strided", x.as_strided((3, 3), (1, 2), 1))
      save("as_strided_overlap", v.as_strided((2, 3), (1, 1)))
      n = save("n", torch.randint(-3, 4, (2, 5)).to(torch.int32))
      save("n_transpose", n.t())
      save("n_cat", torch.cat([n, n], 0))
      save("n_flip", n.flip([1]))
      """)
  }

  func oracle() throws -> OracleTensors { try Self.oracle.get() }

  func testReshapeViewPermuteTranspose() throws {
    let o = try oracle()
    let x = try o["x"]
    try o.expect(try x.reshape([4, 6]), "reshape")
    try o.expect(try x.reshape([-1, 4]), "reshape_infer")
    try o.expect(try x.view([6, 4]), "view")
    try o.expect(try x.permute([2, 0, 1]), "permute")
    try o.expect(try x.permute(2, 0, 1), "permute")
    let t = try x.transpose(0, 2)
    try o.expect(t, "transpose")
    XCTAssertFalse(t.isContiguous)
    XCTAssertEqual(t.strides, [1, 4, 12])
    let c = try t.contiguous()
    XCTAssertTrue(c.isContiguous)
    XCTAssertEqual(c.strides, [6, 2, 1])
    try o.expect(c, "transpose_contiguous")
    // A view of a non-contiguous layout is refused; reshape copies instead.
    XCTAssertThrowsError(try t.view([24]))
    XCTAssertEqual(try t.reshape([24]).shape, [24])
  }

  func testViewsShareStorage() throws {
    let x = try Tensor.arange(6, dtype: .float32)
    let v = try x.view([2, 3])
    try v.mul_(2)
    XCTAssertEqual(try x.toArray(Float.self), [0, 2, 4, 6, 8, 10])
    let row = try v[1]
    try row.fill_(-1)
    XCTAssertEqual(try x.toArray(Float.self), [0, 2, 4, -1, -1, -1])
    try x.transpose(0, 0).zero_()
    XCTAssertEqual(try v.sum().item(), 0)
    // clone has its own storage.
    let copy = try x.clone()
    try copy.fill_(5)
    XCTAssertEqual(try x.sum().item(), 0)
  }

  func testSliceNarrowSelect() throws {
    let o = try oracle()
    let x = try o["x"]
    try o.expect(try x.slice(dim: 1, start: 1, end: 3), "slice")
    try o.expect(try x.slice(dim: 2, step: 2), "slice_step")
    try o.expect(try x.slice(dim: -1, step: 2), "slice_step")
    try o.expect(try x.slice(dim: 1, start: -2), "slice_negative")
    try o.expect(try x.slice(dim: 1, start: 1, end: 100), "slice_clamped")
    try o.expect(try x.narrow(dim: 2, start: 1, length: 2), "narrow")
    try o.expect(try x.narrow(dim: 1, start: -2, length: 2), "narrow_negative")
    try o.expect(try x.select(dim: 1, index: 2), "select")
    try o.expect(try x.select(dim: -1, index: -1), "select_negative")
    try o.expect(try x[1], "subscript")
    XCTAssertThrowsError(try x.narrow(dim: 2, start: 3, length: 2))
    XCTAssertThrowsError(try x[2])
  }

  func testIndexing() throws {
    let o = try oracle()
    let x = try o["x"]
    try o.expect(try x.indexSelect(dim: 2, index: try o["idx"]), "index_select")
    try o.expect(try x.maskedSelect(try x .> 0), "masked_select")
    try o.expect(try x.gather(dim: 2, index: try o["gidx"]), "gather")
  }

  func testCatAndStack() throws {
    let o = try oracle()
    let x = try o["x"], y = try o["y"], a = try o["a"], b = try o["b"]
    try o.expect(try Tensor.cat([x, y, x], dim: 1), "cat")
    try o.expect(try Tensor.cat([x, x], dim: -1), "cat_negative")
    try o.expect(try Tensor.stack([a, b]), "stack0")
    try o.expect(try Tensor.stack([a, b], dim: 1), "stack1")
    try o.expect(try Tensor.stack([a, b], dim: -1), "stack_last")
    let n = try o["n"]
    try o.expect(try Tensor.cat([n, n]), "n_cat")
    try o.expect(try n.transpose(0, 1), "n_transpose")
    try o.expect(try n.flip([1]), "n_flip")
  }

  func testSplitAndChunk() throws {
    let o = try oracle()
    let x = try o["x"], v = try o["v"]
    func expectParts(_ parts: [Tensor], _ prefix: String, count: Int, line: UInt = #line) throws {
      XCTAssertEqual(parts.count, count, prefix, line: line)
      for (i, part) in parts.enumerated() { try o.expect(part, "\(prefix)_\(i)", line: line) }
    }
    try expectParts(try x.split(size: 3, dim: 2), "split3", count: 2)
    try expectParts(try x.split(sizes: [1, 3], dim: 2), "split_sizes", count: 2)
    try expectParts(try x.split(sizes: [1, 3], dim: -1), "split_sizes", count: 2)
    try expectParts(try v.chunk(3), "chunk3", count: 3)
    try expectParts(try x.chunk(3, dim: 2), "chunk_x", count: 2)
    XCTAssertThrowsError(try x.split(sizes: [1, 2], dim: 2))
  }

  func testSqueezeUnsqueezeExpand() throws {
    let o = try oracle()
    let x = try o["x"], s = try o["s"], c = try o["c"]
    try o.expect(try s.squeeze(), "squeeze")
    try o.expect(try s.squeeze(dim: 0), "squeeze0")
    try o.expect(try s.squeeze(dim: 1), "squeeze1")
    try o.expect(try s.squeeze(dim: -2), "squeeze_neg")
    try o.expect(try x.unsqueeze(0), "unsqueeze0")
    try o.expect(try x.unsqueeze(-1), "unsqueeze_last")
    try o.expect(try x.unsqueeze(2), "unsqueeze2")
    let e = try c.expand([3, 4])
    try o.expect(e, "expand")
    XCTAssertEqual(e.strides, [1, 0])
    try o.expect(try c.expand([2, -1, 4]), "expand_new")
  }

  func testFlipFlattenRepeatAsStrided() throws {
    let o = try oracle()
    let x = try o["x"], c = try o["c"], v = try o["v"]
    try o.expect(try x.flip([0, 2]), "flip")
    try o.expect(try x.flip([-1]), "flip_last")
    try o.expect(try x.flatten(), "flatten")
    try o.expect(try x.flatten(startDim: 1), "flatten1")
    try o.expect(try x.flatten(startDim: 0, endDim: 1), "flatten01")
    try o.expect(try x.flatten(startDim: -2, endDim: -1), "flatten1")
    try o.expect(try Tensor(scalar: 2).flatten(), "flatten_scalar")
    try o.expect(try c.repeated([2, 3]), "repeat")
    try o.expect(try c.repeated([2, 1, 2]), "repeat_more")
    try o.expect(try x.asStrided(shape: [3, 3], strides: [1, 2], offset: 1), "as_strided")
    try o.expect(try v.asStrided(shape: [2, 3], strides: [1, 1]), "as_strided_overlap")
  }
}
