import Foundation
import SegKitTensor
import SegKitTestSupport
import XCTest

/// Creation, seeded sampling, element types and reading values back, against PyTorch.
final class OpsCreationTests: XCTestCase {
  static let oracle = Result {
    try OracleTensors.run("""
      save("zeros", torch.zeros(2, 3))
      save("ones_i32", torch.ones(2, 2, dtype=torch.int32))
      save("zeros_bool", torch.zeros(3, dtype=torch.bool))
      save("full", torch.full((2, 3), 2.5))
      save("full_i64", torch.full((3,), 7, dtype=torch.int64))
      save("full_f64", torch.full((2,), -1.25, dtype=torch.float64))
      save("full_bool", torch.full((2,), True))
      save("scalar", torch.tensor(3.5))

      save("arange_5", torch.arange(5))
      save("arange_2_10_3", torch.arange(2, 10, 3))
      save("arange_down", torch.arange(5, -3, -2))
      save("arange_quarter", torch.arange(0, 1, 0.25))
      save("arange_float", torch.arange(-1.5, 2.2, 0.7))
      save("arange_f64", torch.arange(0, 2, 0.3, dtype=torch.float64))
      save("arange_f32_int_args", torch.arange(0, 5, dtype=torch.float32))
      save("arange_int_frac_end", torch.arange(0, 2.5, dtype=torch.int64))
      save("arange_int_frac", torch.arange(0.5, 5, 1.5, dtype=torch.int64))

      torch.manual_seed(42)
      save("rand", torch.rand(3, 5))
      save("randn", torch.randn(4, 5))
      save("randint", torch.randint(0, 10, (20,)))
      save("rand_f64", torch.rand(3, dtype=torch.float64))
      save("randn_long", torch.randn(37))
      save("randint_i32", torch.randint(-5, 5, (2, 3), dtype=torch.int32))
      save("uniform", torch.empty(6).uniform_(-2, 3))
      save("normal", torch.empty(6).normal_(1, 0.5))

      save("arr_uint8", torch.tensor([0, 1, 255, 7], dtype=torch.uint8))
      save("arr_int8", torch.tensor([-128, 0, 127], dtype=torch.int8))
      save("arr_int16", torch.tensor([-300, 0, 300], dtype=torch.int16))
      save("arr_int32", torch.tensor([[-70000, 1], [2, 70000]], dtype=torch.int32))
      save("arr_int64", torch.tensor([-(2**40), 5, 2**40]))
      save("arr_float16", torch.tensor([0.5, -1.25, 3.0], dtype=torch.float16))
      save("arr_bfloat16", torch.tensor([0.5, -1.25, 3.0], dtype=torch.bfloat16))
      save("arr_float32", torch.tensor([[0.1, -2.5, 3.0]]))
      save("arr_float64", torch.tensor([0.1, 1e300], dtype=torch.float64))
      save("arr_bool", torch.tensor([[True, False], [False, True]]))

      f = torch.tensor([1.7, -1.7, 0.0, 2.5])
      save("f_to_int32", f.to(torch.int32))
      save("f_to_bool", f.to(torch.bool))
      save("f_to_f16", f.to(torch.float16))
      save("f_to_uint8", torch.tensor([3.9, 250.0]).to(torch.uint8))
      save("i_to_f64", torch.tensor([3, -4]).to(torch.float64))
      """)
  }

  func oracle() throws -> OracleTensors { try Self.oracle.get() }

  func testFilled() throws {
    let o = try oracle()
    try o.expect(try Tensor.zeros([2, 3]), "zeros")
    try o.expect(try Tensor.ones([2, 2], dtype: .int32), "ones_i32")
    try o.expect(try Tensor.zeros([3], dtype: .bool), "zeros_bool")
    try o.expect(try Tensor.full([2, 3], 2.5), "full")
    try o.expect(try Tensor.full([3], 7, dtype: .int64), "full_i64")
    try o.expect(try Tensor.full([2], -1.25, dtype: .float64), "full_f64")
    try o.expect(try Tensor.full([2], 1, dtype: .bool), "full_bool")
    try o.expect(try Tensor(scalar: 3.5), "scalar")
    let e = try Tensor.empty([4, 0, 2], dtype: .float64)
    XCTAssertEqual(e.shape, [4, 0, 2])
    XCTAssertEqual(e.dtype, .float64)
    XCTAssertEqual(e.count, 0)
  }

  func testArange() throws {
    let o = try oracle()
    try o.expect(try Tensor.arange(5), "arange_5")
    try o.expect(try Tensor.arange(2, 10, step: 3), "arange_2_10_3")
    try o.expect(try Tensor.arange(5, -3, step: -2), "arange_down")
    // Fractional arguments give float32, as Python floats do.
    try o.expect(try Tensor.arange(0, 1, step: 0.25), "arange_quarter")
    try o.expect(try Tensor.arange(-1.5, 2.2, step: 0.7), "arange_float")
    try o.expect(try Tensor.arange(0, 2, step: 0.3, dtype: .float64), "arange_f64")
    try o.expect(try Tensor.arange(0, 5, dtype: .float32), "arange_f32_int_args")
    try o.expect(try Tensor.arange(0, 2.5, dtype: .int64), "arange_int_frac_end")
    try o.expect(try Tensor.arange(0.5, 5, step: 1.5, dtype: .int64), "arange_int_frac")
  }

  func testSeededSamplingMatchesPyTorch() throws {
    let o = try oracle()
    // Same seed and the same sequence of draws as the oracle script.
    Torch.manualSeed(42)
    try o.expect(try Tensor.rand([3, 5]), "rand", atol: 0, rtol: 0)
    try o.expect(try Tensor.randn([4, 5]), "randn", atol: 0, rtol: 0)
    try o.expect(try Tensor.randint(0, 10, [20]), "randint")
    try o.expect(try Tensor.rand([3], dtype: .float64), "rand_f64", atol: 0, rtol: 0)
    try o.expect(try Tensor.randn([37]), "randn_long", atol: 0, rtol: 0)
    try o.expect(try Tensor.randint(-5, 5, [2, 3], dtype: .int32), "randint_i32")
    let u = try Tensor.empty([6])
    try u.uniform_(from: -2, to: 3)
    try o.expect(u, "uniform", atol: 0, rtol: 0)
    let n = try Tensor.empty([6])
    try n.normal_(mean: 1, std: 0.5)
    try o.expect(n, "normal", atol: 0, rtol: 0)
    // Reseeding replays the stream.
    Torch.manualSeed(42)
    try o.expect(try Tensor.rand([3, 5]), "rand", atol: 0, rtol: 0)
  }

  func testArraysOfEachDTypeRoundTrip() throws {
    let o = try oracle()
    func roundTrip<T: TensorScalar & Equatable>(_ values: [T], shape: [Int]? = nil, _ name: String) throws {
      let t = try Tensor(values, shape: shape)
      XCTAssertEqual(t.dtype, T.dtype, name)
      XCTAssertEqual(try t.toArray(T.self), values, name)
      try o.expect(t, name)
    }
    try roundTrip([0, 1, 255, 7] as [UInt8], "arr_uint8")
    try roundTrip([-128, 0, 127] as [Int8], "arr_int8")
    try roundTrip([-300, 0, 300] as [Int16], "arr_int16")
    try roundTrip([-70000, 1, 2, 70000] as [Int32], shape: [2, 2], "arr_int32")
    try roundTrip([-(1 << 40), 5, 1 << 40] as [Int64], "arr_int64")
    try roundTrip([-(1 << 40), 5, 1 << 40] as [Int], "arr_int64")
    #if !(os(macOS) && arch(x86_64))  // no Float16 there
    try roundTrip([0.5, -1.25, 3.0] as [Float16], "arr_float16")
    #endif
    try roundTrip([0.1, -2.5, 3.0] as [Float], shape: [1, 3], "arr_float32")
    try roundTrip([0.1, 1e300] as [Double], "arr_float64")
    try roundTrip([true, false, false, true], shape: [2, 2], "arr_bool")
    // bfloat16 has no Swift element type: it goes through a conversion.
    let b = try Tensor([0.5, -1.25, 3.0] as [Float]).to(.bfloat16)
    try o.expect(b, "arr_bfloat16")
    XCTAssertEqual(try b.toArray(Float.self), [0.5, -1.25, 3.0])
  }

  func testToArrayConvertsAsTensorTo() throws {
    let o = try oracle()
    let f = try Tensor([1.7, -1.7, 0.0, 2.5] as [Float])
    XCTAssertEqual(try f.toArray(Int32.self), try o["f_to_int32"].toArray(Int32.self))
    XCTAssertEqual(try f.toArray(Bool.self), try o["f_to_bool"].toArray(Bool.self))
    #if !(os(macOS) && arch(x86_64))  // no Float16 there
    XCTAssertEqual(try f.toArray(Float16.self), try o["f_to_f16"].toArray(Float16.self))
    #endif
    XCTAssertEqual(try Tensor([3.9, 250] as [Float]).toArray(UInt8.self), try o["f_to_uint8"].toArray(UInt8.self))
    try o.expect(try f.to(.int32), "f_to_int32")
    try o.expect(try Tensor([3, -4] as [Int]).to(.float64), "i_to_f64")
    XCTAssertEqual(try Tensor([true, false]).toArray(Int.self), [1, 0])
    XCTAssertEqual(try Tensor([2, 0] as [Int]).toArray(Bool.self), [true, false])
    XCTAssertEqual(try Tensor(scalar: 4, dtype: .int64).toArray(Int.self), [4])
    XCTAssertEqual(try Tensor.zeros([0, 3]).toArray(Float.self), [])
    XCTAssertEqual(try Tensor([] as [Float]).shape, [0])
    XCTAssertEqual(try Tensor(scalar: 2.5).item(), 2.5)
    XCTAssertEqual(try Tensor([7] as [Int32]).item(), 7)
  }

  func testData() throws {
    let t = try Tensor([1, -2, 3.5, 0, 8, 9] as [Float], shape: [2, 3])
    let expected = [1, -2, 3.5, 0, 8, 9].flatMap { withUnsafeBytes(of: Float($0).bitPattern.littleEndian, Array.init) }
    XCTAssertEqual([UInt8](try t.data()), expected)
    // A non-contiguous view gives its own elements in row-major order.
    let transposed = try t.transpose(0, 1)
    XCTAssertFalse(transposed.isContiguous)
    let columns = [1, 0, -2, 8, 3.5, 9].flatMap { withUnsafeBytes(of: Float($0).bitPattern.littleEndian, Array.init) }
    XCTAssertEqual([UInt8](try transposed.data()), columns)
    XCTAssertEqual([UInt8](try Tensor([true, false, true]).data()), [1, 0, 1])
    XCTAssertEqual(try Tensor([300, -1] as [Int16]).data().count, 4)
    // Bytes back into a tensor.
    let copy = try t.data().withUnsafeBytes { try Tensor(bytes: $0, shape: [3, 2], dtype: .float32) }
    XCTAssertEqual(try copy.toArray(Float.self), [1, -2, 3.5, 0, 8, 9])
  }
}
