import Foundation
import SegKitTensor
import XCTest

/// Misuse throws a TorchError with a useful message, and the process carries on.
final class ErrorTests: XCTestCase {
  /// Asserts that `body` throws a TorchError whose message contains every one of
  /// `fragments`, then that ordinary work still succeeds.
  func expectTorchError<T>(
    _ fragments: String..., file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T
  ) {
    XCTAssertThrowsError(try body(), file: file, line: line) { error in
      guard let torchError = error as? TorchError else {
        XCTFail("expected a TorchError, got \(type(of: error)): \(error)", file: file, line: line)
        return
      }
      for fragment in fragments {
        XCTAssertTrue(torchError.message.contains(fragment), "'\(fragment)' not in: \(torchError.message)",
                      file: file, line: line)
      }
    }
    XCTAssertEqual(try (Tensor.ones([2, 2]) + 1).sum().item(), 8, "ops still work afterwards", file: file, line: line)
  }

  func testShapeMismatchInArithmetic() throws {
    let a = try Tensor.ones([2, 3]), b = try Tensor.ones([4])
    expectTorchError("size of tensor a (3) must match the size of tensor b (4)") { try a + b }
    expectTorchError("must match") { try a += b }
    expectTorchError("must match") { try Tensor.where(a .> 0, a, b) }
  }

  func testMatmulShapes() throws {
    let a = try Tensor.ones([2, 3]), b = try Tensor.ones([4, 5])
    expectTorchError("cannot be multiplied", "2x3", "4x5") { try a.matmul(b) }
    expectTorchError("cannot be multiplied") { try a.linear(weight: b) }
  }

  func testConvolutionWithWrongChannels() throws {
    let x = try Tensor.ones([1, 2, 5, 5]), w = try Tensor.ones([4, 3, 3, 3])
    expectTorchError("expected input[1, 2, 5, 5] to have 3 channels") { try x.conv2d(weight: w) }
    expectTorchError("groups") { try Tensor.ones([1, 3, 5, 5]).conv2d(weight: w, groups: 2) }
    expectTorchError("Kernel size can't be greater than actual input size") {
      try Tensor.ones([1, 3, 2, 2]).conv2d(weight: w)
    }
  }

  func testWrongDType() throws {
    expectTorchError("mean(): could not infer output dtype", "Long") { try Tensor.arange(4).mean() }
    expectTorchError("normal", "Long") { try Tensor.randn([2], dtype: .int64) }
    expectTorchError("floating point") { try Tensor.ones([2], dtype: .int32).requiresGrad(true) }
    expectTorchError("result type Float can't be cast to the desired output type Long") {
      try Tensor.arange(3) += 0.5
    }
    expectTorchError("Expected dtype int32 or int64 for index") {
      try Tensor.ones([3]).indexSelect(dim: 0, index: Tensor([0.5] as [Float]))
    }
    expectTorchError("not implemented for 'Long'") { try Tensor.arange(3).softmax(dim: 0) }
    expectTorchError("does not require grad") { try Tensor.ones([2]).sum().backward() }
  }

  func testUnavailableDevice() throws {
    try XCTSkipIf(Device.cuda(0).isAvailable, "a GPU is available here")
    expectTorchError("CUDA") { try Tensor.zeros([2], device: .cuda(0)) }
    expectTorchError("CUDA") { try Tensor.ones([2]).to(.cuda(0)) }
    expectTorchError("CUDA") { try Tensor.randint(0, 3, [2], device: .cuda(0)) }
    expectTorchError("CUDA") { try Tensor.arange(3, device: .cuda()) }
    if !Device.mps.isAvailable {
      expectTorchError("MPS") { try Tensor.ones([2], device: .mps) }
    }
  }

  func testValueCountMismatch() throws {
    expectTorchError("3 values", "[2, 2]") { try Tensor([1, 2, 3] as [Float], shape: [2, 2]) }
    expectTorchError("buffer holds 8 bytes") {
      try [UInt8](repeating: 0, count: 8).withUnsafeBytes { try Tensor(bytes: $0, shape: [3], dtype: .float32) }
    }
    expectTorchError("shape '[5]' is invalid for input of size 6") { try Tensor.ones([2, 3]).reshape([5]) }
    expectTorchError("expand") { try Tensor.ones([2, 3]).expand([4, 3]) }
  }

  func testBadDimensions() throws {
    let t = try Tensor.ones([2, 3])
    let outOfRange = "Dimension out of range (expected to be in range of [-2, 1], but got 5)"
    expectTorchError(outOfRange) { try t.sum(dim: 5) }
    expectTorchError(outOfRange) { try t.softmax(dim: 5) }
    expectTorchError(outOfRange) { try t.transpose(0, 5) }
    expectTorchError(outOfRange) { try t.max(dim: 5) }
    expectTorchError(outOfRange) { try t.narrow(dim: 5, start: 0, length: 1) }
    expectTorchError(outOfRange) { try t.split(size: 1, dim: 5) }
    expectTorchError(outOfRange) { try t.chunk(2, dim: 5) }
    expectTorchError(outOfRange) { try t.flatten(startDim: 5) }
    expectTorchError("out of range") { try Tensor.cat([t, t], dim: 5) }
    expectTorchError("index 3 out of range") { try t[3] }
    expectTorchError("does not match the length of the desired ordering") { try t.permute(0) }
    expectTorchError("flatten") { try t.flatten(startDim: 1, endDim: 0) }
    expectTorchError("4-D") { try t.interpolate(size: [3, 3]) }
    expectTorchError("4-D") { try t.interpolate(scaleFactor: 2) }
  }

  func testInvalidArguments() throws {
    let t = try Tensor.ones([1, 1, 4, 4])
    expectTorchError("dropout probability", "1.5") { try t.dropout(p: 1.5) }
    expectTorchError("Padding length") { try t.pad([1, 2, 3]) }
    expectTorchError("split") { try t.split(size: 0) }
    expectTorchError("chunk") { try t.chunk(0) }
    expectTorchError("asStrided") { try t.asStrided(shape: [2], strides: [1, 1]) }
    expectTorchError("grid_sample") { try t.gridSample(grid: Tensor.zeros([1, 2, 2, 2]), mode: .nearestExact) }
    expectTorchError("negative") { try Tensor.ones([-1]) }
  }

  func testMisusedTensors() throws {
    expectTorchError("a Tensor with 3 elements cannot be converted to Scalar") { try Tensor.ones([3]).item() }
    let leaf = try Tensor.ones([2]).requiresGrad(true)
    expectTorchError("a leaf Variable that requires grad is being used in an in-place operation") { try leaf += 1 }
    let x = try Tensor.ones([2, 4, 3, 3])
    expectTorchError("running_mean must be defined in evaluation mode") {
      try x.batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: false)
    }
    expectTorchError("Expected more than 1 value per channel when training, got input size [1, 4, 1, 1]") {
      try Tensor.ones([1, 4, 1, 1]).batchNorm(weight: nil, bias: nil, runningMean: nil, runningVar: nil, training: true)
    }
    expectTorchError("Expected number of channels in input to be divisible by num_groups") { try x.groupNorm(groups: 3) }
    expectTorchError("random_ expects 'from' to be less than 'to'") { try Tensor.randint(3, 3, [2]) }
  }

  func testNegativeThreadCount() throws {
    let before = Torch.threads
    expectTorchError("thread count must be at least 1, got -2") { try Torch.setThreads(-2) }
    expectTorchError("thread count must be at least 1, got 0") { try Torch.setThreads(0) }
    XCTAssertEqual(Torch.threads, before)
  }

  func testDeviceParsingJunk() {
    for junk in ["gpu", "", "cuda:", "cuda:x", "cuda:-1", "cuda:1:2", "cpu:1", "tpu:0", " cpu"] {
      XCTAssertThrowsError(try Device(parsing: junk), junk) { error in
        let message = (error as? TorchError)?.message ?? ""
        XCTAssertTrue(message.contains("unknown device '\(junk)'"), message)
        XCTAssertTrue(message.contains("cuda:N"), message)
      }
    }
  }

  func testErrorMessagesStayOnTheirThread() {
    // The shim keeps the last message per thread, so concurrent failures do not mix.
    final class Messages: @unchecked Sendable {
      let lock = NSLock()
      var wrong: [String] = []
    }
    let messages = Messages()
    DispatchQueue.concurrentPerform(iterations: 2) { i in
      for _ in 0..<200 {
        do {
          if i == 0 { _ = try Tensor.ones([2]).sum(dim: 7) } else { _ = try Tensor.arange(3).mean() }
        } catch {
          let text = "\(error)"
          if !text.contains(i == 0 ? "Dimension out of range" : "mean()") {
            messages.lock.withLock { messages.wrong.append(text) }
          }
        }
      }
    }
    XCTAssertEqual(messages.wrong, [])
  }
}
