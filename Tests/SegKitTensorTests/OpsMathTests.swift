import SegKitTensor
import SegKitTestSupport
import XCTest

/// Elementwise arithmetic, type promotion, comparisons, unary functions,
/// activations, softmax and linear algebra against PyTorch.
final class OpsMathTests: XCTestCase {
  static let oracle = Result {
    try OracleTensors.run("""
      a = save("a", torch.randn(3, 4))
      b = save("b", torch.randn(4))
      c = save("c", torch.rand(3, 1) + 0.5)
      p = save("p", torch.rand(3, 4) + 0.1)
      ia = save("ia", torch.randint(-5, 6, (3, 4)))
      ib = save("ib", torch.tensor([1, -2, 3, 4]))
      i32 = save("i32", torch.tensor([1, 2, 3], dtype=torch.int32))
      u8 = save("u8", torch.tensor([1, 200, 3], dtype=torch.uint8))
      m = save("m", torch.tensor([True, False, True]))

      save("add", a + b); save("sub", a - c); save("mul", a * b); save("div", a / c)
      save("add_s", a + 2); save("sub_s", a - 1.5); save("mul_s", a * 3); save("div_s", a / 4)
      save("rsub_s", 1 - a); save("rdiv_s", 2 / p); save("radd_s", 2 + a); save("rmul_s", 0.5 * a)
      save("neg", -a)
      save("ia_add_1", ia + 1); save("ia_add_half", ia + 0.5); save("ia_rsub", 1 - ia)
      save("ib_rdiv", 2 / ib); save("ia_div_2", ia / 2); save("ia_mul_2", ia * 2); save("ia_sub_big", ia - 3000000000)
      save("i32_add_1", i32 + 1); save("i32_mul_half", i32 * 0.5); save("u8_add_100", u8 + 100)
      save("i32_plus_ia", i32 + ib[:3]); save("ia_plus_a", ia + a)
      save("m_add_1", m + 1); save("m_mul_half", m * 1.5); save("m_eq_1", m == 1)
      save("pow2", a.pow(2)); save("pow_half", p.pow(0.5)); save("pow_t", p.pow(c)); save("ia_pow2", ia.pow(2))
      save("maximum", torch.maximum(a, b)); save("minimum", torch.minimum(a, c))
      save("remainder", torch.remainder(a, 0.7)); save("remainder_t", torch.remainder(ia, ib))
      save("floor_div", torch.floor_divide(ia, 3)); save("floor_div_f", torch.floor_divide(a, c))
      save("atan2", torch.atan2(a, b))

      x = a.clone(); x += b; x -= 1; x *= c; x /= 2; save("inplace_ops", x)
      x = a.clone(); x += 1.5; x -= 0.5; x *= 2; x /= 4; save("inplace_scalars", x)
      x = a.clone(); x.add_(b, alpha=0.5); save("add_alpha", x)
      x = a.clone(); x.addcmul_(b, c, value=0.3); save("addcmul", x)
      x = a.clone(); x.addcdiv_(b, c, value=-2); save("addcdiv", x)
      x = a.clone(); x.lerp_(p, 0.25); save("lerp", x)
      x = p.clone(); x.pow_(3); save("pow_inplace", x)
      x = a.clone(); x.clamp_(-0.5, 0.5); save("clamp_inplace", x)
      x = a.clone(); x.clamp_(min=0.2); save("clamp_inplace_min", x)
      x = a.clone(); x.relu_(); save("relu_inplace", x)
      x = ia.clone(); x += 1; x *= 3; save("ia_inplace", x)

      save("eq", ia == 0); save("ne", ia != 2); save("lt", ia < ib); save("le", a <= 0.5)
      save("gt", a > 0); save("ge", a >= c); save("eq_t", ia == ib); save("ne_t", ia != ib)
      save("lt_s", a < 0.2); save("ge_s", ia >= 1); save("gt_t", a > b); save("le_t", a <= c)
      save("and", (a > 0) & (b > 0)); save("or", (a > 0) | (ia > 2)); save("not", ~(a > 0))
      save("where", torch.where(a > 0, a, c)); save("where_int", torch.where(ia > 0, ia, ib))
      save("b_expanded", b.expand(3, 4))
      save("masked_fill", a.masked_fill(a > 0, -1)); save("masked_fill_int", ia.masked_fill(ia < 0, 7))
      save("masked_fill_bcast", a.masked_fill(b > 0, 0.25))
      save("clamp", a.clamp(-0.5, 0.5)); save("clamp_min", a.clamp(min=0)); save("clamp_max", a.clamp(max=-0.1))
      save("ia_clamp_min", ia.clamp(min=1)); save("ia_clamp_max_half", ia.clamp(max=2.5)); save("ia_clamp", ia.clamp(-2, 2))

      for name in ["exp", "abs", "neg", "sigmoid", "tanh", "floor", "ceil", "round", "sign", "sin", "cos",
                   "expm1", "square"]:
          save("u_" + name, getattr(a, name)())
      for name in ["log", "sqrt", "rsqrt", "log1p", "reciprocal"]:
          save("u_" + name, getattr(p, name)())
      h = save("h", torch.tensor([-0.5, 0.5, 1.5, 2.5, -2.5, float("nan"), float("inf"), -float("inf")]))
      save("round_half", h.round()); save("isnan", h.isnan()); save("isfinite", h.isfinite())
      w = save("w", torch.randn(4, 5) * 4)
      save("relu", F.relu(w)); save("relu6", F.relu6(w)); save("hardswish", F.hardswish(w))
      save("hardsigmoid", F.hardsigmoid(w)); save("leaky", F.leaky_relu(w, 0.2)); save("leaky_default", F.leaky_relu(w))
      save("silu", F.silu(w))

      save("softmax1", a.softmax(1)); save("softmax0", a.softmax(0)); save("log_softmax", w.log_softmax(-1))
      labels = save("labels", torch.tensor([[0, 3], [4, 1]]))
      save("one_hot", F.one_hot(labels, 5))
      save("one_hot_infer", F.one_hot(torch.tensor([2, 0, 1])))

      m1 = save("m1", torch.randn(3, 5)); m2 = save("m2", torch.randn(5, 2))
      bt = save("bt", torch.randn(2, 3, 5)); vec = save("vec", torch.randn(5))
      save("mm", m1 @ m2); save("bmm_bcast", bt @ m2); save("mv", m1 @ vec); save("vm", vec @ m2); save("dot", vec @ vec)
      lw = save("lw", torch.randn(4, 5)); lb = save("lb", torch.randn(4))
      save("linear", F.linear(bt, lw, lb)); save("linear_nobias", F.linear(m1, lw))
      """)
  }

  func oracle() throws -> OracleTensors { try Self.oracle.get() }

  func testBroadcastingArithmetic() throws {
    let o = try oracle()
    let a = try o["a"], b = try o["b"], c = try o["c"], p = try o["p"]
    try o.expect(try a + b, "add")
    try o.expect(try a - c, "sub")
    try o.expect(try a * b, "mul")
    try o.expect(try a / c, "div")
    try o.expect(try a + 2, "add_s")
    try o.expect(try a - 1.5, "sub_s")
    try o.expect(try a * 3, "mul_s")
    try o.expect(try a / 4, "div_s")
    try o.expect(try 1 - a, "rsub_s")
    try o.expect(try 2 / p, "rdiv_s")
    try o.expect(try 2 + a, "radd_s")
    try o.expect(try 0.5 * a, "rmul_s")
    try o.expect(try -a, "neg")
  }

  func testScalarTypePromotion() throws {
    let o = try oracle()
    let ia = try o["ia"], ib = try o["ib"], i32 = try o["i32"], u8 = try o["u8"], m = try o["m"], a = try o["a"]
    try o.expect(try ia + 1, "ia_add_1")
    try o.expect(try ia + 0.5, "ia_add_half")
    try o.expect(try 1 - ia, "ia_rsub")
    try o.expect(try 2 / ib, "ib_rdiv")
    try o.expect(try ia / 2, "ia_div_2")
    try o.expect(try ia * 2, "ia_mul_2")
    try o.expect(try ia - 3_000_000_000, "ia_sub_big")
    try o.expect(try i32 + 1, "i32_add_1")
    try o.expect(try i32 * 0.5, "i32_mul_half")
    try o.expect(try u8 + 100, "u8_add_100")
    try o.expect(try i32 + ib.slice(dim: 0, end: 3), "i32_plus_ia")
    try o.expect(try ia + a, "ia_plus_a")
    try o.expect(try m + 1, "m_add_1")
    try o.expect(try m * 1.5, "m_mul_half")
    try o.expect(try m .== 1, "m_eq_1")
  }

  func testNamedBinaryFunctions() throws {
    let o = try oracle()
    let a = try o["a"], b = try o["b"], c = try o["c"], p = try o["p"], ia = try o["ia"], ib = try o["ib"]
    try o.expect(try a.pow(2), "pow2")
    try o.expect(try p.pow(0.5), "pow_half")
    try o.expect(try p.pow(c), "pow_t")
    try o.expect(try ia.pow(2), "ia_pow2")
    try o.expect(try a.maximum(b), "maximum")
    try o.expect(try a.minimum(c), "minimum")
    try o.expect(try a.remainder(0.7), "remainder")
    try o.expect(try ia.remainder(ib), "remainder_t")
    try o.expect(try ia.floorDivide(3), "floor_div")
    try o.expect(try a.floorDivide(c), "floor_div_f")
    try o.expect(try a.atan2(b), "atan2")
  }

  func testInPlace() throws {
    let o = try oracle()
    let a = try o["a"], b = try o["b"], c = try o["c"], p = try o["p"]
    var x = try a.clone()
    let alias = x
    try x += b
    try x -= Tensor(scalar: 1)
    try x *= c
    try x /= Tensor(scalar: 2)
    try o.expect(alias, "inplace_ops")
    x = try a.clone()
    try x += 1.5
    try x -= 0.5
    try x *= 2
    try x /= 4
    try o.expect(x, "inplace_scalars")
    x = try a.clone()
    try x.add_(b, alpha: 0.5)
    try o.expect(x, "add_alpha")
    x = try a.clone()
    try x.addcmul_(b, c, value: 0.3)
    try o.expect(x, "addcmul")
    x = try a.clone()
    try x.addcdiv_(b, c, value: -2)
    try o.expect(x, "addcdiv")
    x = try a.clone()
    try x.lerp_(p, weight: 0.25)
    try o.expect(x, "lerp")
    x = try p.clone()
    try x.pow_(3)
    try o.expect(x, "pow_inplace")
    x = try a.clone()
    try x.clamp_(min: -0.5, max: 0.5)
    try o.expect(x, "clamp_inplace")
    x = try a.clone()
    try x.clamp_(min: 0.2)
    try o.expect(x, "clamp_inplace_min")
    x = try a.clone()
    try x.relu_()
    try o.expect(x, "relu_inplace")
    x = try o["ia"]
    try x += 1
    try x *= 3
    try o.expect(x, "ia_inplace")
    // The named forms match the operators.
    x = try a.clone()
    try x.add_(1.5)
    try x.sub_(Tensor(scalar: 0.5))
    try x.mul_(2)
    try x.div_(4)
    try o.expect(x, "inplace_scalars")
    x = try a.clone()
    try x.add_(b)
    try x.sub_(Tensor(scalar: 1))
    try x.mul_(c)
    try x.div_(Tensor(scalar: 2))
    try o.expect(x, "inplace_ops")
    // An integer tensor cannot hold a float result in place, as in PyTorch.
    let integers = try x.to(.int64)
    XCTAssertThrowsError(try integers += 0.5)
  }

  func testComparisonsWhereMaskedFillClamp() throws {
    let o = try oracle()
    let a = try o["a"], b = try o["b"], c = try o["c"], ia = try o["ia"], ib = try o["ib"]
    try o.expect(try ia .== 0, "eq")
    try o.expect(try ia .!= 2, "ne")
    try o.expect(try ia .< ib, "lt")
    try o.expect(try a .<= 0.5, "le")
    try o.expect(try a .> 0, "gt")
    try o.expect(try a .>= c, "ge")
    try o.expect(try ia .== ib, "eq_t")
    try o.expect(try ia .!= ib, "ne_t")
    try o.expect(try a .< 0.2, "lt_s")
    try o.expect(try ia .>= 1, "ge_s")
    try o.expect(try a .> b, "gt_t")
    try o.expect(try a .<= c, "le_t")
    try o.expect(try (a .> 0) .& (b .> 0), "and")
    try o.expect(try (a .> 0) .| (ia .> 2), "or")
    try o.expect(try .!(a .> 0), "not")
    try o.expect(try (a .> 0).logicalNot(), "not")
    try o.expect(try Tensor.where(a .> 0, a, c), "where")
    try o.expect(try Tensor.where(ia .> 0, ia, ib), "where_int")
    try o.expect(try a.maskedFill(a .> 0, -1), "masked_fill")
    try o.expect(try ia.maskedFill(ia .< 0, 7), "masked_fill_int")
    try o.expect(try a.maskedFill(b .> 0, 0.25), "masked_fill_bcast")
    try o.expect(try a.clamp(min: -0.5, max: 0.5), "clamp")
    try o.expect(try a.clamp(min: 0), "clamp_min")
    try o.expect(try a.clamp(max: -0.1), "clamp_max")
    try o.expect(try ia.clamp(min: 1), "ia_clamp_min")
    try o.expect(try ia.clamp(max: 2.5), "ia_clamp_max_half")
    try o.expect(try ia.clamp(min: -2, max: 2), "ia_clamp")
  }

  func testCopyAndAllClose() throws {
    let o = try oracle()
    let a = try o["a"], b = try o["b"]
    XCTAssertTrue(try a.allClose(a + 1e-9))
    XCTAssertFalse(try a.allClose(a + 1e-3))
    XCTAssertTrue(try a.allClose(a + 1e-3, atol: 2e-3))
    XCTAssertTrue(try (a * 1.001).allClose(a, rtol: 2e-3, atol: 0))
    // copy_ broadcasts and converts the dtype in place.
    let target = try Tensor.zeros([3, 4], dtype: .float64)
    try target.copy_(b)
    try o.expect(try target.to(.float32), "b_expanded")
    let ints = try Tensor.zeros([2], dtype: .int32)
    try ints.copy_(Tensor([2.7, -1.5] as [Float]))
    XCTAssertEqual(try ints.toArray(Int32.self), [2, -1])
  }

  func testUnaryFunctions() throws {
    let o = try oracle()
    let a = try o["a"], p = try o["p"], h = try o["h"]
    let onA: [(String, (Tensor) throws -> Tensor)] = [
      ("exp", { try $0.exp() }), ("abs", { try $0.abs() }), ("neg", { try $0.neg() }),
      ("sigmoid", { try $0.sigmoid() }), ("tanh", { try $0.tanh() }), ("floor", { try $0.floor() }),
      ("ceil", { try $0.ceil() }), ("round", { try $0.round() }), ("sign", { try $0.sign() }),
      ("sin", { try $0.sin() }), ("cos", { try $0.cos() }), ("expm1", { try $0.expm1() }),
      ("square", { try $0.square() }),
    ]
    for (name, op) in onA { try o.expect(try op(a), "u_\(name)") }
    let onP: [(String, (Tensor) throws -> Tensor)] = [
      ("log", { try $0.log() }), ("sqrt", { try $0.sqrt() }), ("rsqrt", { try $0.rsqrt() }),
      ("log1p", { try $0.log1p() }), ("reciprocal", { try $0.reciprocal() }),
    ]
    for (name, op) in onP { try o.expect(try op(p), "u_\(name)") }
    try o.expect(try h.round(), "round_half")
    try o.expect(try h.isNaN(), "isnan")
    try o.expect(try h.isFinite(), "isfinite")
  }

  func testActivations() throws {
    let o = try oracle()
    let w = try o["w"]
    try o.expect(try w.relu(), "relu")
    try o.expect(try w.relu6(), "relu6")
    try o.expect(try w.hardswish(), "hardswish")
    try o.expect(try w.hardsigmoid(), "hardsigmoid")
    try o.expect(try w.leakyReLU(slope: 0.2), "leaky")
    try o.expect(try w.leakyReLU(), "leaky_default")
    try o.expect(try w.silu(), "silu")
  }

  func testSoftmaxAndOneHot() throws {
    let o = try oracle()
    let a = try o["a"], w = try o["w"]
    try o.expect(try a.softmax(dim: 1), "softmax1")
    try o.expect(try a.softmax(dim: 0), "softmax0")
    try o.expect(try w.logSoftmax(dim: -1), "log_softmax")
    try o.expect(try o["labels"].oneHot(numClasses: 5), "one_hot")
    try o.expect(try Tensor([2, 0, 1] as [Int]).oneHot(numClasses: -1), "one_hot_infer")
  }

  func testMatmulAndLinear() throws {
    let o = try oracle()
    let m1 = try o["m1"], m2 = try o["m2"], bt = try o["bt"], vec = try o["vec"]
    try o.expect(try m1.matmul(m2), "mm")
    try o.expect(try bt.matmul(m2), "bmm_bcast")
    try o.expect(try m1.matmul(vec), "mv")
    try o.expect(try vec.matmul(m2), "vm")
    try o.expect(try vec.matmul(vec), "dot")
    try o.expect(try bt.linear(weight: try o["lw"], bias: try o["lb"]), "linear")
    try o.expect(try m1.linear(weight: try o["lw"]), "linear_nobias")
  }
}
