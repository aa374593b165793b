import Foundation
import SegKitTensor
import SegKitTestSupport
import XCTest

/// Tensors are freed when their last reference goes: a long loop of small ops
/// leaves the resident memory where it was.
final class MemoryTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  /// Resident set size in bytes, from /proc/self/statm (Linux only).
  func residentBytes() throws -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else {
      throw XCTSkip("/proc/self/statm is not available on this system")
    }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { throw XCTSkip("unexpected statm format: \(text)") }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
  }

  /// One iteration touches creation, views, arithmetic, reductions, autograd,
  /// reading values back, descriptions and a failing call.
  func churn(_ i: Int) throws {
    let a = try Tensor.randn([4, 8])
    let b = try Tensor([Float](repeating: Float(i % 7), count: 8))
    let c = try (a * b + 1).relu().transpose(0, 1).contiguous()
    let (values, indices) = try c.max(dim: 0)
    _ = try values.sum().item() + indices.sum().item()
    _ = try c.toArray(Float.self)
    _ = try c.data()
    let x = try Tensor.ones([2, 3]).requiresGrad(true)
    try (x * x).mean().backward()
    _ = x.grad
    try x.zeroGrad()
    if i % 10 == 0 {
      _ = c.description
      _ = try? a.matmul(a)  // shape mismatch: an error message instead of a result
      _ = try Tensor.cat(try c.chunk(2), dim: 1)
      _ = try Tensor.ones([1, 2, 6, 6]).conv2d(weight: Tensor.ones([3, 2, 3, 3]), padding: 1).maxPool2dWithIndices(kernel: 2)
    }
  }

  func testSmallOpsDoNotLeak() throws {
    for i in 0..<2_000 { try churn(i) }  // warm-up: allocator pools, thread pools, caches
    let before = try residentBytes()
    for i in 0..<20_000 { try churn(i) }
    let growth = try residentBytes() - before
    XCTAssertLessThan(growth, 4 << 20, "resident memory grew by \(growth >> 10) KiB")
  }
}
