import Foundation
import SegKitNN
import SegKitTestSupport
import XCTest

final class LearningRateTests: XCTestCase {
  /// Rates from torch.optim.lr_scheduler for steps 0..<15, printed as JSON by one oracle run.
  static let torchRates = Result { () throws -> [String: [Double]] in
    let output = try Oracle.run(torchSchedulerScript)
    return try JSONDecoder().decode([String: [Double]].self, from: Data(output.utf8))
  }

  private func assertRates(
    _ schedule: LearningRateSchedule, _ expected: [Double], file: StaticString = #filePath, line: UInt = #line
  ) {
    for (step, rate) in expected.enumerated() {
      XCTAssertEqual(schedule(step), rate, accuracy: 1e-12 * Swift.max(1, Swift.abs(rate)), "step \(step)", file: file, line: line)
    }
  }

  // MARK: Formulas

  func testPolyFollowsDeepLab() throws {
    let schedule = try LearningRateSchedule(.poly(base: 0.007, maxSteps: 100, power: 0.9, end: 1e-4))
    for step in [0, 1, 37, 99, 100, 150] {
      let expected = (0.007 - 1e-4) * Foundation.pow(1 - Double(Swift.min(step, 100)) / 100, 0.9) + 1e-4
      XCTAssertEqual(schedule(step), expected, accuracy: 1e-15)
    }
  }

  func testStepDecaysInStairs() throws {
    let schedule = try LearningRateSchedule(.step(base: 0.007, factor: 0.1, every: 2000))
    assertRates(schedule, [0.007])
    XCTAssertEqual(schedule(1999), 0.007, accuracy: 1e-15)
    XCTAssertEqual(schedule(2000), 0.0007, accuracy: 1e-15)
    XCTAssertEqual(schedule(4500), 0.00007, accuracy: 1e-15)
  }

  func testPiecewiseConstantAsSeed000() throws {
    let base = 1e-8
    let schedule = try LearningRateSchedule(.piecewise(
      boundaries: [10000, 15000, 25000, 30000, 40000], values: [base, base * 0.1, base, base * 0.1, base, base * 0.1]))
    let expected: [(Int, Double)] = [
      (0, base), (10000, base), (10001, base * 0.1), (15000, base * 0.1), (15001, base), (29999, base * 0.1),
      (40000, base), (40001, base * 0.1), (50000, base * 0.1),
    ]
    for (step, rate) in expected { XCTAssertEqual(schedule(step), rate, "step \(step)") }
    XCTAssertThrowsError(try LearningRateSchedule(.piecewise(boundaries: [10], values: [1])))
    XCTAssertThrowsError(try LearningRateSchedule(.piecewise(boundaries: [10, 5], values: [1, 2, 3])))
  }

  func testCosineStopsAtTheMinimum() throws {
    let schedule = try LearningRateSchedule(.cosine(base: 0.1, maxSteps: 10, minimum: 0.01))
    XCTAssertEqual(schedule(0), 0.1, accuracy: 1e-15)
    XCTAssertEqual(schedule(5), 0.055, accuracy: 1e-15)
    XCTAssertEqual(schedule(10), 0.01, accuracy: 1e-15)
    XCTAssertEqual(schedule(25), 0.01, accuracy: 1e-15)
  }

  func testSlowStartThenWarmUpThenDecay() throws {
    let schedule = try LearningRateSchedule(
      .constant(0.01), warmupSteps: 10, warmupStartFactor: 0.2, slowStartSteps: 3, slowStartLearningRate: 1e-4)
    XCTAssertEqual(schedule(0), 1e-4)
    XCTAssertEqual(schedule(2), 1e-4)
    XCTAssertEqual(schedule(3), 0.01 * (0.2 + 0.8 * 0.3), accuracy: 1e-15)
    XCTAssertEqual(schedule(9), 0.01 * (0.2 + 0.8 * 0.9), accuracy: 1e-15)
    XCTAssertEqual(schedule(10), 0.01)
  }

  func testScheduleIsAPureFunctionOfTheStep() throws {
    let schedule = try LearningRateSchedule(.poly(base: 0.01, maxSteps: 50), warmupSteps: 5, slowStartSteps: 2)
    let forward = (0..<50).map { schedule($0) }
    let resumed = (20..<50).map { schedule($0) }
    XCTAssertEqual(Array(forward[20...]), resumed)
  }

  // MARK: Parity with torch.optim.lr_scheduler

  func testMatchesTorchSchedulers() throws {
    let torch = try Self.torchRates.get()
    assertRates(try LearningRateSchedule(.poly(base: 0.1, maxSteps: 10, power: 0.9)), try XCTUnwrap(torch["poly"]))
    assertRates(try LearningRateSchedule(.step(base: 0.1, factor: 0.5, every: 3)), try XCTUnwrap(torch["step"]))
    assertRates(try LearningRateSchedule(.cosine(base: 0.1, maxSteps: 10, minimum: 0.01)), try XCTUnwrap(torch["cosine"]))
    assertRates(
      try LearningRateSchedule(.poly(base: 0.1, maxSteps: 10, power: 0.9), warmupSteps: 4, warmupStartFactor: 0.1),
      try XCTUnwrap(torch["warmup_poly"]))
  }
}

private let torchSchedulerScript = """
  import json, warnings
  import torch
  from torch.optim import lr_scheduler as S
  warnings.simplefilter("ignore")

  def rates(make, steps=15):
      opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
      sched = make(opt)
      out = []
      for _ in range(steps):
          out.append(opt.param_groups[0]["lr"])
          opt.step()
          sched.step()
      return out

  print(json.dumps({
      "poly": rates(lambda o: S.PolynomialLR(o, total_iters=10, power=0.9)),
      "step": rates(lambda o: S.StepLR(o, step_size=3, gamma=0.5)),
      # CosineAnnealingLR keeps oscillating after T_max; compare up to it.
      "cosine": rates(lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.01), steps=11),
      "warmup_poly": rates(lambda o: S.ChainedScheduler(
          [S.LinearLR(o, start_factor=0.1, total_iters=4), S.PolynomialLR(o, total_iters=10, power=0.9)])),
  }))
  """
