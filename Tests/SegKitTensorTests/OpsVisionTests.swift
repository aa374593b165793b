import SegKitTensor
import SegKitTestSupport
import XCTest

/// Convolutions, pooling, normalisation and dropout against torch.nn.functional.
final class OpsVisionTests: XCTestCase {
  static let oracle = Result {
    try OracleTensors.run("""
      x = save("x", torch.randn(2, 4, 7, 6))
      w = save("w", torch.randn(6, 4, 3, 3)); b = save("b", torch.randn(6))
      wg = save("wg", torch.randn(6, 2, 3, 3)); wd = save("wd", torch.randn(4, 1, 3, 3))
      save("conv", F.conv2d(x, w, b))
      save("conv_s2p1", F.conv2d(x, w, b, stride=2, padding=1))
      save("conv_dil", F.conv2d(x, w, None, dilation=2, padding=2))
      save("conv_rect", F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0), dilation=(1, 2)))
      save("conv_groups", F.conv2d(x, wg, b, padding=1, groups=2))
      save("conv_depthwise", F.conv2d(x, wd, None, stride=2, padding=1, groups=4))

      t = save("t", torch.randn(1, 4, 4, 5))
      tw = save("tw", torch.randn(4, 3, 3, 3)); tb = save("tb", torch.randn(3))
      twg = save("twg", torch.randn(4, 2, 3, 3)); tbg = save("tbg", torch.randn(4))
      save("convt", F.conv_transpose2d(t, tw, tb))
      save("convt_s2", F.conv_transpose2d(t, tw, tb, stride=2, padding=1, output_padding=1))
      save("convt_rect", F.conv_transpose2d(t, tw, None, stride=(2, 3), padding=(0, 1), output_padding=(1, 2)))
      save("convt_groups", F.conv_transpose2d(t, twg, tbg, stride=2, groups=2))
      save("convt_dil", F.conv_transpose2d(t, tw, tb, dilation=2, padding=1))

      p = save("p", torch.randn(2, 3, 7, 8))
      save("max_k3s2", F.max_pool2d(p, 3, 2))
      save("max_ceil", F.max_pool2d(p, 3, 2, ceil_mode=True))
      save("max_pad", F.max_pool2d(p, 3, 2, padding=1))
      save("max_dil", F.max_pool2d(p, 2, 1, dilation=2))
      save("max_rect", F.max_pool2d(p, (2, 3), (1, 2)))
      save("max_default_stride", F.max_pool2d(p, 2))
      v, i = F.max_pool2d(p, 2, 2, return_indices=True); save("mpi_v", v); save("mpi_i", i)
      save("unpool", F.max_unpool2d(v, i, 2, output_size=(7, 8)))
      v, i = F.max_pool2d(p, 3, 2, padding=1, ceil_mode=True, return_indices=True); save("mpi_ceil_v", v); save("mpi_ceil_i", i)
      save("unpool_ceil", F.max_unpool2d(v, i, 3, 2, 1, output_size=(7, 8)))
      save("avg_k3s2", F.avg_pool2d(p, 3, 2))
      save("avg_ceil", F.avg_pool2d(p, 3, 2, ceil_mode=True))
      save("avg_pad_incl", F.avg_pool2d(p, 3, 2, padding=1))
      save("avg_pad_excl", F.avg_pool2d(p, 3, 2, padding=1, count_include_pad=False))
      save("avg_divisor", F.avg_pool2d(p, 2, divisor_override=3))
      save("avg_ceil_pad_excl", F.avg_pool2d(p, 3, 2, padding=1, ceil_mode=True, count_include_pad=False))
      save("aavg_32", F.adaptive_avg_pool2d(p, (3, 2)))
      save("aavg_54", F.adaptive_avg_pool2d(p, (5, 3)))
      save("aavg_1", F.adaptive_avg_pool2d(p, 1))
      save("amax_34", F.adaptive_max_pool2d(p, (3, 5)))
      save("amax_1", F.adaptive_max_pool2d(p, 1))

      bx = save("bx", torch.randn(4, 3, 5, 5) * 2 + 1)
      bw = save("bw", torch.randn(3)); bb = save("bb", torch.randn(3))
      rm = save("rm", torch.randn(3)); rv = save("rv", torch.rand(3) + 0.5)
      rm1, rv1 = rm.clone(), rv.clone()
      save("bn_train", F.batch_norm(bx, rm1, rv1, bw, bb, training=True, momentum=0.3, eps=1e-4))
      save("bn_rm", rm1); save("bn_rv", rv1)
      save("bn_eval", F.batch_norm(bx, rm, rv, bw, bb, training=False))
      save("bn_train_nostats", F.batch_norm(bx, None, None, None, None, training=True))
      save("gn", F.group_norm(x, 2, torch.arange(4.0) - 1, torch.arange(4.0) / 4))
      save("gn1", F.group_norm(x, 1, eps=1e-3))

      d = save("d", torch.randn(4, 6, 5, 5))
      torch.manual_seed(3)
      save("dropout", F.dropout(d, 0.3, True))
      save("dropout2d", F.dropout2d(d, 0.5, True))
      """)
  }

  func oracle() throws -> OracleTensors { try Self.oracle.get() }

  func testConv2d() throws {
    let o = try oracle()
    let x = try o["x"], w = try o["w"], b = try o["b"]
    try o.expect(try x.conv2d(weight: w, bias: b), "conv", atol: 1e-4)
    try o.expect(try x.conv2d(weight: w, bias: b, stride: 2, padding: 1), "conv_s2p1", atol: 1e-4)
    try o.expect(try x.conv2d(weight: w, padding: 2, dilation: 2), "conv_dil", atol: 1e-4)
    try o.expect(try x.conv2d(weight: w, bias: b, stride: [2, 1], padding: [1, 0], dilation: [1, 2]), "conv_rect",
                 atol: 1e-4)
    try o.expect(try x.conv2d(weight: try o["wg"], bias: b, padding: 1, groups: 2), "conv_groups", atol: 1e-4)
    try o.expect(try x.conv2d(weight: try o["wd"], stride: 2, padding: 1, groups: 4), "conv_depthwise", atol: 1e-4)
  }

  func testConvTranspose2d() throws {
    let o = try oracle()
    let t = try o["t"], tw = try o["tw"], tb = try o["tb"]
    try o.expect(try t.convTranspose2d(weight: tw, bias: tb), "convt", atol: 1e-4)
    try o.expect(try t.convTranspose2d(weight: tw, bias: tb, stride: 2, padding: 1, outputPadding: 1), "convt_s2",
                 atol: 1e-4)
    try o.expect(try t.convTranspose2d(weight: tw, stride: [2, 3], padding: [0, 1], outputPadding: [1, 2]),
                 "convt_rect", atol: 1e-4)
    try o.expect(try t.convTranspose2d(weight: try o["twg"], bias: try o["tbg"], stride: 2, groups: 2),
                 "convt_groups", atol: 1e-4)
    try o.expect(try t.convTranspose2d(weight: tw, bias: tb, padding: 1, dilation: 2), "convt_dil", atol: 1e-4)
  }

  func testMaxPool() throws {
    let o = try oracle()
    let p = try o["p"]
    try o.expect(try p.maxPool2d(kernel: 3, stride: 2), "max_k3s2")
    try o.expect(try p.maxPool2d(kernel: 3, stride: 2, ceilMode: true), "max_ceil")
    try o.expect(try p.maxPool2d(kernel: 3, stride: 2, padding: 1), "max_pad")
    try o.expect(try p.maxPool2d(kernel: 2, stride: 1, dilation: 2), "max_dil")
    try o.expect(try p.maxPool2d(kernel: [2, 3], stride: [1, 2]), "max_rect")
    try o.expect(try p.maxPool2d(kernel: 2), "max_default_stride")
  }

  func testMaxPoolIndicesAndUnpool() throws {
    let o = try oracle()
    let p = try o["p"]
    var r = try p.maxPool2dWithIndices(kernel: 2, stride: 2)
    try o.expect(r.output, "mpi_v")
    try o.expect(r.indices, "mpi_i")
    try o.expect(try r.output.maxUnpool2d(indices: r.indices, outputSize: [7, 8]), "unpool")
    r = try p.maxPool2dWithIndices(kernel: 3, stride: 2, padding: 1, ceilMode: true)
    try o.expect(r.output, "mpi_ceil_v")
    try o.expect(r.indices, "mpi_ceil_i")
    try o.expect(try r.output.maxUnpool2d(indices: r.indices, outputSize: [7, 8]), "unpool_ceil")
  }

  func testAvgPool() throws {
    let o = try oracle()
    let p = try o["p"]
    try o.expect(try p.avgPool2d(kernel: 3, stride: 2), "avg_k3s2")
    try o.expect(try p.avgPool2d(kernel: 3, stride: 2, ceilMode: true), "avg_ceil")
    try o.expect(try p.avgPool2d(kernel: 3, stride: 2, padding: 1), "avg_pad_incl")
    try o.expect(try p.avgPool2d(kernel: 3, stride: 2, padding: 1, countIncludePad: false), "avg_pad_excl")
    try o.expect(try p.avgPool2d(kernel: 2, divisorOverride: 3), "avg_divisor")
    try o.expect(try p.avgPool2d(kernel: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false),
                 "avg_ceil_pad_excl")
  }

  func testAdaptivePools() throws {
    let o = try oracle()
    let p = try o["p"]
    try o.expect(try p.adaptiveAvgPool2d([3, 2]), "aavg_32")
    try o.expect(try p.adaptiveAvgPool2d([5, 3]), "aavg_54")
    try o.expect(try p.adaptiveAvgPool2d(1), "aavg_1")
    try o.expect(try p.adaptiveMaxPool2d([3, 5]), "amax_34")
    try o.expect(try p.adaptiveMaxPool2d(1), "amax_1")
  }

  func testBatchNorm() throws {
    let o = try oracle()
    let x = try o["bx"], w = try o["bw"], b = try o["bb"], rm = try o["rm"], rv = try o["rv"]
    try o.expect(try x.batchNorm(weight: w, bias: b, runningMean: rm, runningVar: rv, training: true, momentum: 0.3,
                                 eps: 1e-4), "bn_train", atol: 1e-4)
    // Training updates the running statistics in place (the variance unbiased).
    try o.expect(rm, "bn_rm")
    try o.expect(rv, "bn_rv")
    let em = try o["rm"], ev = try o["rv"]
    try o.expect(try x.batchNorm(weight: w, bias: b, runningMean: em, runningVar: ev, training: false), "bn_eval",
                 atol: 1e-4)
    try o.expect(em, "rm")
    try o.expect(ev, "rv")
    try o.expect(try x.batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true),
                 "bn_train_nostats", atol: 1e-4)
  }

  func testGroupNorm() throws {
    let o = try oracle()
    let x = try o["x"]
    let weight = try Tensor.arange(4, dtype: .float32) - 1
    let bias = try Tensor.arange(4, dtype: .float32) / 4
    try o.expect(try x.groupNorm(groups: 2, weight: weight, bias: bias), "gn", atol: 1e-4)
    try o.expect(try x.groupNorm(groups: 1, eps: 1e-3), "gn1", atol: 1e-4)
  }

  func testDropoutMatchesPyTorchForTheSameSeed() throws {
    let o = try oracle()
    let d = try o["d"]
    Torch.manualSeed(3)
    try o.expect(try d.dropout(p: 0.3), "dropout")
    try o.expect(try d.dropout2d(p: 0.5), "dropout2d")
  }

  func testDropoutEdgeCasesAndStatistics() throws {
    Torch.manualSeed(5)
    let x = try Tensor.rand([64, 64]) + 1
    let xs = try x.toArray(Float.self)
    XCTAssertEqual(try x.dropout(p: 0).toArray(Float.self), xs)
    XCTAssertEqual(try x.dropout(p: 0.7, training: false).toArray(Float.self), xs)
    XCTAssertEqual(try x.dropout2d(p: 0.7, training: false).toArray(Float.self), xs)
    XCTAssertEqual(try x.dropout(p: 1).toArray(Float.self), [Float](repeating: 0, count: xs.count))
    let p = 0.3
    let ys = try x.dropout(p: p).toArray(Float.self)
    let dropped = ys.filter { $0 == 0 }.count
    // 4096 Bernoulli draws: the dropped fraction is within ~5 standard deviations (0.036) of p.
    XCTAssertEqual(Double(dropped) / Double(ys.count), p, accuracy: 0.036)
    for (y, v) in zip(ys, xs) where y != 0 { XCTAssertEqual(y, v / Float(1 - p), accuracy: 1e-5) }
  }

  func testDropout2dZeroesWholeChannels() throws {
    Torch.manualSeed(5)
    let x = try Tensor.rand([4, 16, 3, 3]) + 1
    let y = try x.dropout2d(p: 0.5)
    let planes = try y.reshape([64, 9]).toArray(Float.self)
    let source = try x.reshape([64, 9]).toArray(Float.self)
    var zeroed = 0
    for plane in 0..<64 {
      let values = planes[(plane * 9)..<(plane * 9 + 9)]
      if values.allSatisfy({ $0 == 0 }) {
        zeroed += 1
      } else {
        for (v, s) in zip(values, source[(plane * 9)..<(plane * 9 + 9)]) { XCTAssertEqual(v, s * 2, accuracy: 1e-5) }
      }
    }
    XCTAssertGreaterThan(zeroed, 10)
    XCTAssertLessThan(zeroed, 54)
    XCTAssertEqual(try x.dropout2d(p: 1).abs().sum().item(), 0)
  }
}
