import Foundation
import SegKitInference
import SegKitTestSupport
import SegKitTraining
import XCTest

/// Training DVSNet's decision network: on samples whose score is a smooth function of
/// the features it learns to predict far better than the scores' own spread; the best
/// epoch is the one kept; sample files and weight files read back.
final class DecisionNetworkTrainingTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  func samples(_ count: Int, seed: UInt64) throws -> DecisionSamples {
    Torch.manualSeed(seed)
    let features = try Tensor.randn([count, 8, 2, 2])
    // Like real confidence scores: near 100, a few points apart.
    let scores = try (features.select(dim: 1, index: 0).mean(dims: [1, 2]) * 2).tanh() * 2 + 96
    return try DecisionSamples(features: features, scores: scores, distances: try Tensor.zeros([count]))
  }

  func testLearnsAScoreAndKeepsTheBestEpoch() throws {
    let (training, validation) = (try samples(512, seed: 1), try samples(128, seed: 2))
    var trainer = DecisionNetworkTraining()
    (trainer.epochs, trainer.grid) = (25, Size2(2, 2))
    var reported: [DecisionNetworkTraining.Epoch] = []
    let (network, history, best) = try trainer.train(training, validation: validation) { reported.append($0) }
    XCTAssertEqual(history.count, 25)
    XCTAssertEqual(reported.map(\.epoch), Array(1...25))
    XCTAssertEqual(best.validationRMS, history.map(\.validationRMS).min())
    XCTAssertEqual(try trainer.rms(network, validation), best.validationRMS, accuracy: 1e-4, "the best epoch's weights are returned")
    let spread = try (validation.scores - validation.scores.mean()).pow(2).mean().item().squareRoot()
    XCTAssertLessThan(best.validationRMS, 0.5 * spread, "RMS \(best.validationRMS) against a spread of \(spread)")

    let folder = try Oracle.temporaryDirectory("segkit-decision")
    defer { try? FileManager.default.removeItem(at: folder) }
    try training.write(to: folder.appendingPathComponent("x.safetensors"))
    let back = try DecisionSamples.read(folder.appendingPathComponent("x.safetensors"))
    XCTAssertEqual(try back.features.toArray(Float.self), try training.features.toArray(Float.self))
    XCTAssertEqual(try back.scores.toArray(Float.self), try training.scores.toArray(Float.self))
    try DecisionNetworkFile.write(network, to: folder.appendingPathComponent("d.safetensors"))
    let loaded = try DecisionNetworkFile.read(folder.appendingPathComponent("d.safetensors"))
    XCTAssertEqual(loaded.grid, Size2(2, 2))
    XCTAssertEqual(try trainer.rms(loaded, validation), best.validationRMS, accuracy: 1e-4)
    XCTAssertThrowsError(try DecisionNetworkFile.read(folder.appendingPathComponent("x.safetensors"))) {
      XCTAssertTrue("\($0)".contains("not a decision network"), "\($0)")
    }
  }
}
