import Foundation
import SegKitTensor
import SegKitTestSupport
import XCTest

/// c10d process groups over Gloo: two ranks in two threads of this process (as
/// PyTorch's own tests do), meeting through a TCP store on loopback.
final class ProcessGroupTests: XCTestCase {
  /// Runs `body(rank)` for ranks 0 and 1 at once; the first error of either is rethrown.
  func twoRanks(timeout: TimeInterval = 30, _ body: @escaping @Sendable (ProcessGroup) throws -> Void) throws {
    let port = try Oracle.freePort()
    let errors = ErrorBox()
    let group = DispatchGroup()
    for rank in 0..<2 {
      DispatchQueue.global().async(group: group) {
        do {
          let processGroup = try ProcessGroup(host: "127.0.0.1", port: port, rank: rank, worldSize: 2, timeout: timeout)
          try body(processGroup)
        } catch { errors.add(error) }
      }
    }
    group.wait()
    if let error = errors.first { throw error }
  }

  func testCollectivesAgreeAcrossRanks() throws {
    try twoRanks { group in
      let rank = Float(group.rank)
      let summed = try Tensor([1 + rank, 10 * rank, -rank] as [Float])
      try group.allReduce(summed)
      XCTAssertEqual(try summed.toArray(Float.self), [3, 10, -1])
      let largest = try Tensor([Double(rank), -Double(rank)])
      try group.allReduce(largest, .max)
      XCTAssertEqual(try largest.toArray(Double.self), [1, 0])

      let broadcast = try Tensor([Int64(group.rank + 5)], shape: [1])
      try group.broadcast(broadcast, from: 1)
      XCTAssertEqual(try broadcast.toArray(Int64.self), [6])

      let gathered = try group.allGather(try Tensor([Float(rank), Float(rank)], shape: [1, 2]))
      XCTAssertEqual(try gathered.map { try $0.toArray(Float.self) }, [[0, 0], [1, 1]])
      try group.barrier()
    }
  }

  /// A peer that never comes: joining fails within the timeout and says so.
  func testAMissingPeerTimesOut() throws {
    let port = try Oracle.freePort()
    let start = Date()
    XCTAssertThrowsError(try ProcessGroup(host: "127.0.0.1", port: port, rank: 0, worldSize: 2, timeout: 2)) {
      XCTAssertTrue("\($0)".contains("rank 0 of 2 could not join the group at 127.0.0.1:\(port)"), "\($0)")
    }
    XCTAssertLessThan(Date().timeIntervalSince(start), 20)
    XCTAssertThrowsError(try ProcessGroup(host: "127.0.0.1", port: port, rank: 2, worldSize: 2))
    XCTAssertThrowsError(try ProcessGroup(host: "127.0.0.1", port: 70000, rank: 0, worldSize: 1))
  }

  /// Synchronised batch norm on two ranks (float64) equals batch norm on the two
  /// batches together: outputs, input gradients, summed weight and bias gradients,
  /// running statistics.
  func testSynchronizedBatchNormEqualsOneBigBatch() throws {
    Torch.manualSeed(11)
    let inputs = try (0..<2).map { _ in try Tensor.randn([2, 3, 4, 5], dtype: .float64) * 3 + 1 }
    let upstream = try (0..<2).map { _ in try Tensor.randn([2, 3, 4, 5], dtype: .float64) }
    let weight0 = try Tensor([0.5, 2, -1.5]), bias0 = try Tensor([0.1, -0.2, 0.3])

    // One process, one batch of four.
    let x = try Tensor.cat(inputs).requiresGrad(true)
    let (weight, bias) = (try weight0.clone().requiresGrad(true), try bias0.clone().requiresGrad(true))
    let (mean, variance) = (try Tensor.zeros([3], dtype: .float64), try Tensor.ones([3], dtype: .float64))
    let y = try x.batchNorm(weight: weight, bias: bias, runningMean: mean, runningVar: variance, training: true)
    try (y * Tensor.cat(upstream)).sum().backward()

    let results = ResultBox()
    try twoRanks { group in
      let r = group.rank
      let xr = try inputs[r].clone().requiresGrad(true)
      let (wr, br) = (try weight0.clone().requiresGrad(true), try bias0.clone().requiresGrad(true))
      let (mr, vr) = (try Tensor.zeros([3], dtype: .float64), try Tensor.ones([3], dtype: .float64))
      let yr = try xr.syncBatchNorm(group: group, weight: wr, bias: br, runningMean: mr, runningVar: vr)
      try (yr * upstream[r]).sum().backward()
      results.set(r, [yr, try XCTUnwrap(xr.grad), try XCTUnwrap(wr.grad), try XCTUnwrap(br.grad), mr, vr])
    }
    let (zero, one) = (results.get(0), results.get(1))
    let close = { (a: Tensor, b: Tensor) in try a.allClose(b, rtol: 1e-12, atol: 1e-12) }
    XCTAssertTrue(try close(try Tensor.cat([zero[0], one[0]]), y))
    XCTAssertTrue(try close(try Tensor.cat([zero[1], one[1]]), try XCTUnwrap(x.grad)))
    XCTAssertTrue(try close(zero[2] + one[2], try XCTUnwrap(weight.grad)), "the ranks' weight gradients add up")
    XCTAssertTrue(try close(zero[3] + one[3], try XCTUnwrap(bias.grad)))
    for rank in [zero, one] {
      XCTAssertTrue(try close(rank[4], mean))
      XCTAssertTrue(try close(rank[5], variance))
    }
  }

  /// The gradient exchange overlapped with backward gives, bit for bit, what
  /// averaging the accumulated gradients and then all-reducing each one after
  /// backward gives; it starts buckets during backward (between synchronised batch
  /// norm's own collectives); a bucket with an unused parameter waits for `finish`,
  /// and the unused parameter keeps no gradient.
  func testGradientExchangeDuringBackwardEqualsSumAfterBackward() throws {
    Torch.manualSeed(12)
    let initial = try [[5, 2], [16, 8], [8], [8], [8], [8, 3]].map { try Tensor.randn($0) }
    let batches = try (0..<2).map { _ in try (0..<3).map { _ in try Tensor.randn([6, 16]) } }
    let results = ResultBox()
    try twoRanks { group in
      // Parameters in registration order; the unused one first, so it is reached last.
      func gradients(overlapped: Bool) throws -> [Tensor?] {
        let parameters = try initial.map { try $0.clone().requiresGrad(true) }
        let (w1, b1, gamma, beta, w2) = (parameters[1], parameters[2], parameters[3], parameters[4], parameters[5])
        let exchange = overlapped
          ? try GradientExchange(group: group, parameters: parameters, firstBucketBytes: 64, bucketBytes: 200) : nil
        for (micro, x) in batches[group.rank].enumerated() {
          let h = try (x.matmul(w1) + b1).relu()
          let normalised = try h.syncBatchNorm(group: group, weight: gamma, bias: beta, runningMean: try Tensor.zeros([8]),
                                               runningVar: try Tensor.ones([8]))
          let y = try normalised.matmul(w2)
          if micro == 2 { try exchange?.arm(dividingBy: 3) }
          try (y * y).sum().backward()
        }
        if let exchange {
          try exchange.finish()
          XCTAssertGreaterThan(exchange.bucketCount, 2)
          XCTAssertEqual(exchange.bucketsStartedInBackward, exchange.bucketCount - 1, "all but the unused parameter's bucket")
        } else {
          for grad in parameters.compactMap(\.grad) {
            try grad.div_(3)
            try group.allReduce(grad)
          }
        }
        return parameters.map(\.grad)
      }
      results.set(group.rank, try gradients(overlapped: false).map { try $0 ?? Tensor.zeros([0]) })
      results.set(group.rank + 2, try gradients(overlapped: true).map { try $0 ?? Tensor.zeros([0]) })
    }
    for rank in 0..<2 {
      let (after, during) = (results.get(rank), results.get(rank + 2))
      XCTAssertEqual(during[0].count, 0, "the unused parameter has no gradient")
      for (a, d) in zip(after, during).dropFirst() {
        XCTAssertEqual(try a.toArray(Float.self), try d.toArray(Float.self))
      }
      XCTAssertEqual(try during[1].toArray(Float.self), try results.get(1 - rank + 2)[1].toArray(Float.self), "ranks agree")
    }
  }

  /// A bad argument is an error naming the rank and the operation, on every rank.
  func testBadRootIsAnError() throws {
    try twoRanks(timeout: 5) { group in
      XCTAssertThrowsError(try group.broadcast(try Tensor.zeros([2]), from: 5)) {
        XCTAssertTrue("\($0)".contains("rank \(group.rank) of 2, broadcast: root rank 5"), "\($0)")
      }
      try group.barrier()
    }
  }
}

private final class ResultBox: @unchecked Sendable {
  private let lock = NSLock()
  private var values: [Int: [Tensor]] = [:]
  func set(_ rank: Int, _ tensors: [Tensor]) { lock.lock(); values[rank] = tensors; lock.unlock() }
  func get(_ rank: Int) -> [Tensor] { lock.lock(); defer { lock.unlock() }; return values[rank] ?? [] }
}

private final class ErrorBox: @unchecked Sendable {
  private let lock = NSLock()
  private var errors: [Error] = []
  func add(_ error: Error) { lock.lock(); errors.append(error); lock.unlock() }
  var first: Error? { lock.lock(); defer { lock.unlock() }; return errors.first }
}
