import Foundation
import SegKitModels
import SegKitNN
import SegKitTensor
import SegKitTestSupport
import XCTest

/// Synchronised batch norm (on a world of one) in every batch-norm layer of a whole
/// network gives libtorch's batch-norm gradients: to 1e-12 in float64, where rounding
/// cannot hide a wrong formula, and to float32 rounding in float32.
final class SynchronizedBatchNormNetworkTests: XCTestCase {
  func testWholeNetworkMatchesLibtorchBatchNorm() throws {
    let group = try ProcessGroup(host: "127.0.0.1", port: try Oracle.freePort(), rank: 0, worldSize: 1, timeout: 30)
    for (dtype, tolerance) in [(DType.float64, 1e-12), (DType.float32, 1e-4)] {
      Torch.manualSeed(3)
      let model = try ModelZoo.make("fcn32s_resnet18", classes: 6)
      try model.to(dtype: dtype)
      model.train()
      let images = try Tensor.randn([4, 3, 64, 64], dtype: dtype)
      let labels = try (Tensor.rand([4, 64, 64]) * 6).floor().to(.int64)
      func gradients(synchronized: Bool) throws -> [(String, Tensor)] {
        for case let norm as BatchNorm2d in model.modules() { norm.synchronization = synchronized ? group : nil }
        for parameter in model.parameters() { try parameter.zeroGrad(setToNone: true) }
        try softmaxCrossEntropy(logits: try model.forward(images).out, labels: labels, ignoreIndex: 255).backward()
        return try model.namedParameters().compactMap { name, parameter in try parameter.grad.map { (name, try $0.clone()) } }
      }
      let (plain, synchronized) = (try gradients(synchronized: false), try gradients(synchronized: true))
      XCTAssertEqual(plain.map(\.0), synchronized.map(\.0))
      for ((name, expected), (_, actual)) in zip(plain, synchronized) {
        let error = try ((actual - expected).norm() / (expected.norm() + 1e-30)).item()
        XCTAssertLessThan(error, tolerance, "\(dtype) \(name)")
      }
    }
  }
}
