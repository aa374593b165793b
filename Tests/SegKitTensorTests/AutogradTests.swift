import SegKitTensor
import SegKitTestSupport
import XCTest

/// Gradients against PyTorch's autograd and against finite differences, and the
/// autograd controls: gradient arguments, retained graphs, zeroing, detach, no-grad.
final class AutogradTests: XCTestCase {
  /// For each case the oracle saves its inputs (`NAME_in0`, …), the upstream
  /// gradient (`NAME_g`), the output (`NAME_out`) and the input gradients (`NAME_d0`, …).
  static let oracle = Result {
    try OracleTensors.run("""
      def case(name, fn, *inputs):
          leaves = [save(f"{name}_in{i}", t).clone().requires_grad_(True) for i, t in enumerate(inputs)]
          out = fn(*leaves)
          g = save(f"{name}_g", torch.randn_like(out))
          out.backward(g)
          save(f"{name}_out", out)
          for i, t in enumerate(leaves):
              save(f"{name}_d{i}", t.grad)

      R = torch.randn
      case("arith", lambda a, b: (a + b) * a - a / (b.abs() + 1) + (1 - a) ** 2 + 2 / (b * b + 1) - b.exp() * 0.5,
           R(3, 4), R(4))
      case("arith_inplace_chain", lambda a, c: ((a * 2).add_(c).mul_(c) - 3).clamp(-1, 2), R(3, 4), R(3, 1))
      case("where_masked", lambda a, b: torch.where(a > 0, a * b, b).masked_fill(b < -1, 0), R(3, 4), R(3, 4))
      case("sum_all", lambda x: x.sum(), R(2, 3, 4))
      case("sum_dims", lambda x: x.sum((0, 2), keepdim=True), R(2, 3, 4))
      case("mean", lambda x: x.mean(1), R(2, 3, 4))
      case("prod", lambda x: x.prod(1), R(2, 3, 4))
      case("amax", lambda x: x.amax(2), R(2, 3, 4))
      case("var", lambda x: x.var(1), R(2, 3, 4))
      case("std", lambda x: x.std((0, 2)), R(2, 3, 4))
      case("max_dim", lambda x: x.max(1).values, R(2, 3, 4))
      case("matmul", lambda a, b: a @ b, R(3, 5), R(5, 2))
      case("matmul_batched", lambda a, b: a @ b, R(2, 3, 5), R(5, 2))
      case("linear", lambda x, w, b: F.linear(x, w, b), R(2, 3, 5), R(4, 5), R(4))
      case("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2), R(1, 4, 6, 5), R(6, 2, 3, 3), R(6))
      case("conv_transpose2d", lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
           R(1, 4, 3, 4), R(4, 3, 3, 3), R(3))
      case("max_pool", lambda x: F.max_pool2d(x, 3, 2, 1), R(1, 2, 6, 7))
      case("avg_pool", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), R(1, 2, 6, 7))
      case("adaptive_avg", lambda x: F.adaptive_avg_pool2d(x, (4, 3)), R(1, 2, 6, 7))
      case("adaptive_max", lambda x: F.adaptive_max_pool2d(x, (2, 3)), R(1, 2, 6, 7))
      case("batch_norm", lambda x, w, b: F.batch_norm(x, torch.zeros(3), torch.ones(3), w, b, training=True),
           R(4, 3, 3, 3), R(3), R(3))
      case("group_norm", lambda x, w, b: F.group_norm(x, 2, w, b), R(2, 4, 3, 3), R(4), R(4))
      case("bilinear", lambda x: F.interpolate(x, size=(7, 9), mode="bilinear"), R(1, 2, 4, 5))
      case("bilinear_ac_scale", lambda x: F.interpolate(x, scale_factor=1.75, mode="bilinear", align_corners=True),
           R(1, 2, 4, 5))
      case("bicubic", lambda x: F.interpolate(x, size=(3, 7), mode="bicubic"), R(1, 2, 4, 5))
      case("nearest", lambda x: F.interpolate(x, size=(8, 9), mode="nearest"), R(1, 2, 4, 5))
      case("grid_bilinear", lambda x, g: F.grid_sample(x, g, align_corners=False), R(1, 2, 4, 5), torch.rand(1, 3, 4, 2) * 2.4 - 1.2)
      case("grid_border_ac", lambda x, g: F.grid_sample(x, g, padding_mode="border", align_corners=True),
           R(1, 2, 4, 5), torch.rand(1, 3, 4, 2) * 2.4 - 1.2)
      case("grid_bicubic_reflect", lambda x, g: F.grid_sample(x, g, mode="bicubic", padding_mode="reflection", align_corners=False),
           R(1, 2, 4, 5), torch.rand(1, 3, 4, 2) * 2.4 - 1.2)
      case("pad_constant", lambda x: F.pad(x, (1, 2, 0, 1), value=3), R(1, 2, 3, 4))
      case("pad_reflect", lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"), R(1, 2, 3, 4))
      case("pad_replicate", lambda x: F.pad(x, (2, 2, 1, 0), mode="replicate"), R(1, 2, 3, 4))
      case("pad_circular", lambda x: F.pad(x, (1, 2, 2, 1), mode="circular"), R(1, 2, 3, 4))
      case("softmax", lambda x: x.softmax(1), R(3, 5))
      case("log_softmax", lambda x: x.log_softmax(-1), R(3, 5))
      w = R(4, 6) * 4
      for name in ("relu", "relu6", "hardswish", "hardsigmoid", "silu", "sigmoid", "tanh"):
          case(name, getattr(F, name), w)
      case("leaky_relu", lambda x: F.leaky_relu(x, 0.2), w)
      case("exp", torch.exp, R(4, 6))
      case("abs", torch.abs, R(4, 6))
      case("log_sqrt", lambda x: x.log() + x.sqrt() + x.rsqrt(), torch.rand(4, 6) + 0.1)
      """)
  }

  func oracle() throws -> OracleTensors { try Self.oracle.get() }

  /// Runs `f` on the oracle's inputs for `name`, back-propagates its upstream
  /// gradient and compares the output and every input gradient.
  func expectGradients(
    _ name: String, inputs count: Int, atol: Double = 1e-5, file: StaticString = #filePath, line: UInt = #line,
    _ f: ([Tensor]) throws -> Tensor
  ) throws {
    let o = try oracle()
    let inputs = try (0..<count).map { try o["\(name)_in\($0)"].requiresGrad(true) }
    let out = try f(inputs)
    try o.expect(out, "\(name)_out", atol: atol, file: file, line: line)
    try out.backward(try o["\(name)_g"])
    for (i, input) in inputs.enumerated() {
      guard let grad = input.grad else {
        XCTFail("\(name): input \(i) has no gradient", file: file, line: line)
        continue
      }
      try o.expect(grad, "\(name)_d\(i)", atol: atol, file: file, line: line)
    }
  }

  func testArithmeticGradients() throws {
    try expectGradients("arith", inputs: 2) { t in
      let (a, b) = (t[0], t[1])
      let first = try (a + b) * a - a / (b.abs() + 1)
      return try first + (1 - a).pow(2) + 2 / (b * b + 1) - b.exp() * 0.5
    }
    try expectGradients("arith_inplace_chain", inputs: 2) { t in
      let y = try t[0] * 2
      try y.add_(t[1])
      try y.mul_(t[1])
      return try (y - 3).clamp(min: -1, max: 2)
    }
    try expectGradients("where_masked", inputs: 2) { t in
      try Tensor.where(t[0] .> 0, t[0] * t[1], t[1]).maskedFill(t[1] .< -1, 0)
    }
  }

  func testReductionGradients() throws {
    try expectGradients("sum_all", inputs: 1) { try $0[0].sum() }
    try expectGradients("sum_dims", inputs: 1) { try $0[0].sum(dims: [0, 2], keepDim: true) }
    try expectGradients("mean", inputs: 1) { try $0[0].mean(dim: 1) }
    try expectGradients("prod", inputs: 1) { try $0[0].prod(dims: [1]) }
    try expectGradients("amax", inputs: 1) { try $0[0].max(dims: [2]) }
    try expectGradients("var", inputs: 1) { try $0[0].variance(dims: [1]) }
    try expectGradients("std", inputs: 1) { try $0[0].std(dims: [0, 2]) }
    try expectGradients("max_dim", inputs: 1) { try $0[0].max(dim: 1).values }
  }

  func testLinearAlgebraGradients() throws {
    try expectGradients("matmul", inputs: 2) { try $0[0].matmul($0[1]) }
    try expectGradients("matmul_batched", inputs: 2) { try $0[0].matmul($0[1]) }
    try expectGradients("linear", inputs: 3) { try $0[0].linear(weight: $0[1], bias: $0[2]) }
  }

  func testConvolutionGradients() throws {
    try expectGradients("conv2d", inputs: 3, atol: 1e-4) {
      try $0[0].conv2d(weight: $0[1], bias: $0[2], stride: 2, padding: 1, groups: 2)
    }
    try expectGradients("conv_transpose2d", inputs: 3, atol: 1e-4) {
      try $0[0].convTranspose2d(weight: $0[1], bias: $0[2], stride: 2, padding: 1, outputPadding: 1)
    }
  }

  func testPoolingGradients() throws {
    try expectGradients("max_pool", inputs: 1) { try $0[0].maxPool2d(kernel: 3, stride: 2, padding: 1) }
    try expectGradients("avg_pool", inputs: 1) {
      try $0[0].avgPool2d(kernel: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false)
    }
    try expectGradients("adaptive_avg", inputs: 1) { try $0[0].adaptiveAvgPool2d([4, 3]) }
    try expectGradients("adaptive_max", inputs: 1) { try $0[0].adaptiveMaxPool2d([2, 3]) }
  }

  func testNormalisationGradients() throws {
    try expectGradients("batch_norm", inputs: 3, atol: 1e-4) {
      try $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: Tensor.zeros([3]), runningVar: Tensor.ones([3]),
                          training: true)
    }
    try expectGradients("group_norm", inputs: 3, atol: 1e-4) { try $0[0].groupNorm(groups: 2, weight: $0[1], bias: $0[2]) }
  }

  func testResamplingGradients() throws {
    try expectGradients("bilinear", inputs: 1) { try $0[0].interpolate(size: [7, 9]) }
    try expectGradients("bilinear_ac_scale", inputs: 1) {
      try $0[0].interpolate(scaleFactor: 1.75, mode: .bilinear, alignCorners: true)
    }
    try expectGradients("bicubic", inputs: 1) { try $0[0].interpolate(size: [3, 7], mode: .bicubic) }
    try expectGradients("nearest", inputs: 1) { try $0[0].interpolate(size: [8, 9], mode: .nearest) }
    // Gradients reach the sampling grid too.
    try expectGradients("grid_bilinear", inputs: 2) { try $0[0].gridSample(grid: $0[1]) }
    try expectGradients("grid_border_ac", inputs: 2) {
      try $0[0].gridSample(grid: $0[1], padding: .border, alignCorners: true)
    }
    try expectGradients("grid_bicubic_reflect", inputs: 2, atol: 1e-4) {
      try $0[0].gridSample(grid: $0[1], mode: .bicubic, padding: .reflection)
    }
  }

  func testPadGradients() throws {
    try expectGradients("pad_constant", inputs: 1) { try $0[0].pad([1, 2, 0, 1], value: 3) }
    try expectGradients("pad_reflect", inputs: 1) { try $0[0].pad([2, 1, 1, 2], mode: .reflect) }
    try expectGradients("pad_replicate", inputs: 1) { try $0[0].pad([2, 2, 1, 0], mode: .replicate) }
    try expectGradients("pad_circular", inputs: 1) { try $0[0].pad([1, 2, 2, 1], mode: .circular) }
  }

  func testSoftmaxAndActivationGradients() throws {
    try expectGradients("softmax", inputs: 1) { try $0[0].softmax(dim: 1) }
    try expectGradients("log_softmax", inputs: 1) { try $0[0].logSoftmax(dim: -1) }
    let activations: [(String, (Tensor) throws -> Tensor)] = [
      ("relu", { try $0.relu() }), ("relu6", { try $0.relu6() }), ("hardswish", { try $0.hardswish() }),
      ("hardsigmoid", { try $0.hardsigmoid() }), ("silu", { try $0.silu() }), ("sigmoid", { try $0.sigmoid() }),
      ("tanh", { try $0.tanh() }), ("leaky_relu", { try $0.leakyReLU(slope: 0.2) }), ("exp", { try $0.exp() }),
      ("abs", { try $0.abs() }), ("log_sqrt", { try $0.log() + $0.sqrt() + $0.rsqrt() }),
    ]
    for (name, f) in activations { try expectGradients(name, inputs: 1) { try f($0[0]) } }
  }

  // MARK: Finite differences in float64, without the oracle

  /// Compares autograd's gradient of sum(f(inputs) · weights), for fixed random
  /// weights, with central differences over every input element.
  func expectFiniteDifferences(
    _ shapes: [[Int]], eps: Double = 1e-6, tolerance: Double = 1e-6, file: StaticString = #filePath, line: UInt = #line,
    _ f: ([Tensor]) throws -> Tensor
  ) throws {
    Torch.manualSeed(11)
    let values = try shapes.map { try Tensor.randn($0, dtype: .float64).toArray(Double.self) }
    let leaves = try zip(values, shapes).map { try Tensor($0, shape: $1).requiresGrad(true) }
    let out = try f(leaves)
    let weights = try Tensor.randn(out.shape, dtype: .float64)
    try (out * weights).sum().backward()
    func loss(_ arrays: [[Double]]) throws -> Double {
      try Torch.withNoGrad {
        try (f(zip(arrays, shapes).map { try Tensor($0, shape: $1) }) * weights).sum().item()
      }
    }
    for (k, leaf) in leaves.enumerated() {
      let analytic = try XCTUnwrap(leaf.grad, file: file, line: line).toArray(Double.self)
      for i in values[k].indices {
        var plus = values, minus = values
        plus[k][i] += eps
        minus[k][i] -= eps
        let numeric = (try loss(plus) - loss(minus)) / (2 * eps)
        XCTAssertEqual(analytic[i], numeric, accuracy: tolerance * Swift.max(1, Swift.abs(numeric)),
                       "input \(k) element \(i)", file: file, line: line)
      }
    }
  }

  func testConv2dFiniteDifferences() throws {
    try expectFiniteDifferences([[1, 2, 5, 5], [4, 1, 3, 3], [4]]) {
      try $0[0].conv2d(weight: $0[1], bias: $0[2], stride: 2, padding: 1, dilation: 1, groups: 2)
    }
  }

  func testBilinearFiniteDifferences() throws {
    try expectFiniteDifferences([[1, 2, 3, 4]]) { try $0[0].interpolate(size: [5, 7], mode: .bilinear) }
    try expectFiniteDifferences([[1, 1, 3, 4]]) { try $0[0].interpolate(scaleFactor: 1.5, mode: .bilinear, alignCorners: true) }
  }

  func testGridSampleFiniteDifferences() throws {
    // tanh keeps the grid inside (-0.9, 0.9), away from the border where padding bends the function.
    try expectFiniteDifferences([[1, 2, 4, 5], [1, 3, 2, 2]]) {
      try $0[0].gridSample(grid: $0[1].tanh() * 0.9, mode: .bilinear, padding: .border, alignCorners: false)
    }
  }

  func testBatchNormFiniteDifferences() throws {
    try expectFiniteDifferences([[3, 2, 2, 2], [2], [2]]) {
      try $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: nil, runningVar: nil, training: true)
    }
  }

  func testSoftmaxFiniteDifferences() throws {
    try expectFiniteDifferences([[3, 4]]) { try $0[0].softmax(dim: 1) }
    try expectFiniteDifferences([[3, 4]]) { try $0[0].logSoftmax(dim: 0) }
  }

  // MARK: Controls

  func testBackwardWithGradientArgument() throws {
    let x = try Tensor([1, 2, 3] as [Float]).requiresGrad(true)
    let y = try x * x
    try y.backward(Tensor([1, 0.5, 2] as [Float]))
    XCTAssertEqual(try x.grad?.toArray(Float.self), [2, 2, 12])
    // A non-scalar output needs one.
    let z = try x * 3
    XCTAssertThrowsError(try z.backward()) { error in
      XCTAssertTrue("\(error)".contains("scalar outputs"), "\(error)")
    }
  }

  func testRetainGraphAccumulates() throws {
    let x = try Tensor([1, -2] as [Float]).requiresGrad(true)
    let y = try (x * x).sum()
    try y.backward(retainGraph: true)
    XCTAssertEqual(try x.grad?.toArray(Float.self), [2, -4])
    try y.backward()
    XCTAssertEqual(try x.grad?.toArray(Float.self), [4, -8])
    // The graph is gone after a pass without retainGraph.
    XCTAssertThrowsError(try y.backward()) { error in
      XCTAssertTrue("\(error)".contains("second time"), "\(error)")
    }
    // A new graph accumulates into the same gradient.
    try (x * 3).sum().backward()
    XCTAssertEqual(try x.grad?.toArray(Float.self), [7, -5])
  }

  func testZeroGrad() throws {
    let x = try Tensor([1, 2] as [Float]).requiresGrad(true)
    try x.zeroGrad()  // nothing to clear yet
    XCTAssertNil(x.grad)
    try (x * x).sum().backward()
    let before = try XCTUnwrap(x.grad)
    try x.zeroGrad(setToNone: false)
    XCTAssertEqual(try x.grad?.toArray(Float.self), [0, 0])
    XCTAssertEqual(try before.toArray(Float.self), [0, 0], "zero-filled in place")
    try (x * 5).sum().backward()
    XCTAssertEqual(try x.grad?.toArray(Float.self), [5, 5])
    try x.zeroGrad()
    XCTAssertNil(x.grad)
    try (x * 5).sum().backward()
    XCTAssertEqual(try x.grad?.toArray(Float.self), [5, 5])
    try x.setGrad(Tensor([0.5, 1] as [Float]))
    XCTAssertEqual(try x.grad?.toArray(Float.self), [0.5, 1])
    try x.setGrad(nil)
    XCTAssertNil(x.grad)
    // As Python's `x.grad = g`, a gradient must match the tensor.
    for (bad, message) in [
      (try Tensor.ones([3]), "of size '[3]' to a tensor of size '[2]'"),
      (try Tensor.ones([2], dtype: .float64), "with dtype 'Double' to a tensor with dtype 'Float'"),
      (x, "its own grad"),
    ] {
      XCTAssertThrowsError(try x.setGrad(bad)) { error in
        XCTAssertTrue("\(error)".contains(message), "\(error)")
      }
    }
    XCTAssertNil(x.grad)
  }

  func testDetachCutsTheGraph() throws {
    let x = try Tensor([1, 2, 3] as [Float]).requiresGrad(true)
    let d = try x.detach()
    XCTAssertFalse(d.requiresGrad)
    XCTAssertTrue(d.isLeaf)
    XCTAssertFalse(try (d * 2).requiresGrad)
    // Only the attached factor is differentiated.
    try (x * d).sum().backward()
    XCTAssertEqual(try x.grad?.toArray(Float.self), [1, 2, 3])
    // detach shares storage.
    try d.add_(1)
    XCTAssertEqual(try x.toArray(Float.self), [2, 3, 4])
  }

  func testNoGradRestoresTheMode() throws {
    let x = try Tensor([1, 2] as [Float]).requiresGrad(true)
    XCTAssertTrue(Torch.isGradEnabled)
    let y = try Torch.withNoGrad {
      XCTAssertFalse(Torch.isGradEnabled)
      // Re-enabled inside, restored to off afterwards.
      XCTAssertTrue(try Torch.withGradMode(true) { try (x * 2).requiresGrad })
      XCTAssertFalse(Torch.isGradEnabled)
      return try x * 2
    }
    XCTAssertFalse(y.requiresGrad)
    XCTAssertTrue(Torch.isGradEnabled)
    struct Boom: Error {}
    XCTAssertThrowsError(try Torch.withNoGrad { throw Boom() })
    XCTAssertTrue(Torch.isGradEnabled)
    XCTAssertThrowsError(try Torch.withNoGrad { _ = try Tensor.randn([2], dtype: .int64) })
    XCTAssertTrue(Torch.isGradEnabled)
    XCTAssertTrue(try (x * 2).requiresGrad)
  }

  func testLeavesAndRequiresGrad() throws {
    let plain = try Tensor.ones([2])
    XCTAssertTrue(plain.isLeaf)
    XCTAssertFalse(plain.requiresGrad)
    let x = try Tensor.ones([2]).requiresGrad(true)
    XCTAssertTrue(x.isLeaf)
    XCTAssertTrue(x.requiresGrad)
    let y = try x * 2
    XCTAssertFalse(y.isLeaf)
    XCTAssertTrue(y.requiresGrad)
    XCTAssertThrowsError(try y.requiresGrad(false)) { error in
      XCTAssertTrue((error as? TorchError)?.message.contains("leaf") ?? false, "\(error)")
    }
    XCTAssertThrowsError(try Tensor.ones([2], dtype: .int64).requiresGrad(true)) { error in
      XCTAssertTrue("\(error)".contains("floating point"), "\(error)")
    }
    try x.requiresGrad(false)
    XCTAssertFalse(try (x * 2).requiresGrad)
    // Only leaves keep a gradient.
    let z = try Tensor.ones([2]).requiresGrad(true)
    let w = try z * 3
    try w.sum().backward()
    XCTAssertNil(w.grad)
    XCTAssertEqual(try z.grad?.toArray(Float.self), [3, 3])
  }
}
