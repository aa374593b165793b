import Foundation
import SegKitNN
import SegKitTestSupport
import XCTest

/// A two-layer perceptron trained for a few steps from the oracle's initial weights
/// on the oracle's batches, compared with torch.optim after every run.
final class OptimizerTests: XCTestCase {
  static let oracle = Result { try OracleTensors.run(optimizerScript) }
  static let parameterNames = ["w1", "b1", "w2", "b2"]
  static let steps = 6

  private func oracle() throws -> OracleTensors { try Self.oracle.get() }

  /// Fresh leaf copies of the initial weights.
  private func initialParameters(_ o: OracleTensors) throws -> [Tensor] {
    try Self.parameterNames.map { try o["init.\($0)"].clone().requiresGrad(true) }
  }

  /// Two groups: the first layer at the base rate and default decay, the second
  /// with its own multiplier and weight decay.
  private func groups(_ p: [Tensor], multiplier: Double, decay: Double?) -> [ParameterGroup] {
    [ParameterGroup(parameters: [p[0], p[1]]),
     ParameterGroup(parameters: [p[2], p[3]], learningRateMultiplier: multiplier, weightDecay: decay)]
  }

  private func learningRate(_ step: Int) -> Double { 0.1 * Foundation.pow(0.9, Double(step)) }

  private func loss(_ p: [Tensor], batch: Int, _ o: OracleTensors) throws -> Tensor {
    let hidden = try o["x.\(batch)"].linear(weight: p[0], bias: p[1]).relu()
    return try hidden.linear(weight: p[2], bias: p[3]).crossEntropy(target: o["y.\(batch)"])
  }

  private func train(_ optimizer: Optimizer, _ p: [Tensor], _ o: OracleTensors, steps: Range<Int>) throws {
    for step in steps {
      try optimizer.zeroGrad()
      try loss(p, batch: step, o).backward()
      try optimizer.step(learningRate: learningRate(step))
    }
  }

  private func assertParameters(_ p: [Tensor], match run: String, _ o: OracleTensors, file: StaticString = #filePath, line: UInt = #line) throws {
    for (name, parameter) in zip(Self.parameterNames, p) {
      try assertClose(parameter, o["\(run).\(name)"], "\(run).\(name)", file: file, line: line)
    }
  }

  // MARK: Parity with torch.optim

  func testSGDMomentumWeightDecayAndGroups() throws {
    let o = try oracle()
    let p = try initialParameters(o)
    let sgd = try SGD(groups(p, multiplier: 0.5, decay: 0), momentum: 0.9, dampening: 0.1, weightDecay: 1e-2)
    try train(sgd, p, o, steps: 0..<Self.steps)
    try assertParameters(p, match: "sgd", o)
  }

  func testSGDNesterov() throws {
    let o = try oracle()
    let p = try initialParameters(o)
    try train(SGD(parameters: p, momentum: 0.9, nesterov: true, weightDecay: 1e-2), p, o, steps: 0..<Self.steps)
    try assertParameters(p, match: "nesterov", o)
  }

  func testAdam() throws {
    let o = try oracle()
    let p = try initialParameters(o)
    try train(Adam(groups(p, multiplier: 0.5, decay: 0), weightDecay: 1e-2), p, o, steps: 0..<Self.steps)
    try assertParameters(p, match: "adam", o)
  }

  func testAdamAMSGrad() throws {
    let o = try oracle()
    let p = try initialParameters(o)
    try train(Adam(parameters: p, beta1: 0.8, beta2: 0.99, eps: 1e-6, amsgrad: true), p, o, steps: 0..<Self.steps)
    try assertParameters(p, match: "amsgrad", o)
  }

  func testAdamW() throws {
    let o = try oracle()
    let p = try initialParameters(o)
    try train(AdamW(groups(p, multiplier: 2, decay: 0), weightDecay: 0.05), p, o, steps: 0..<Self.steps)
    try assertParameters(p, match: "adamw", o)
  }

  // MARK: Gradients

  func testClipGradNorm() throws {
    let o = try oracle()
    for (run, normType) in [("clip2", 2.0), ("clip_inf", Double.infinity)] {
      let p = try initialParameters(o)
      try loss(p, batch: 0, o).backward()
      let total = try clipGradNorm(p, maxNorm: 0.5, normType: normType)
      XCTAssertEqual(total, try o["\(run).total"].item(), accuracy: 1e-5 * Swift.abs(total), run)
      for (name, parameter) in zip(Self.parameterNames, p) {
        try assertClose(XCTUnwrap(parameter.grad), o["\(run).\(name)"], "\(run).\(name)")
      }
    }
  }

  func testGradientAccumulationAveragesBeforeStepping() throws {
    let o = try oracle()
    let p = try initialParameters(o)
    let sgd = try SGD(parameters: p, momentum: 0.9)
    var accumulator = try GradientAccumulator(iterations: 3)
    var stepsTaken = 0
    for batch in 0..<Self.steps {
      try loss(p, batch: batch, o).backward()
      if try accumulator.accumulate(p) {
        try sgd.step(learningRate: 0.1)
        try sgd.zeroGrad()
        stepsTaken += 1
      }
    }
    XCTAssertEqual(stepsTaken, 2)
    try assertParameters(p, match: "accumulated", o)
  }

  // MARK: State export and import

  func testStateRoundTripContinuesExactly() throws {
    let o = try oracle()
    let half = Self.steps / 2
    let makers: [(String, ([Tensor]) throws -> Optimizer)] = [
      ("sgd", { try SGD(self.groups($0, multiplier: 0.5, decay: 0), momentum: 0.9, dampening: 0.1, weightDecay: 1e-2) }),
      ("adam", { try Adam(self.groups($0, multiplier: 0.5, decay: 0), weightDecay: 1e-2) }),
      ("amsgrad", { try Adam(parameters: $0, beta1: 0.8, beta2: 0.99, eps: 1e-6, amsgrad: true) }),
    ]
    for (run, make) in makers {
      let p = try initialParameters(o)
      let first = try make(p)
      try train(first, p, o, steps: 0..<half)
      // Through raw bytes, as a checkpoint file would carry them.
      let saved = try first.stateTensors().map { name, tensor in
        (name, try tensor.data().withUnsafeBytes { try Tensor(bytes: $0, shape: tensor.shape, dtype: tensor.dtype) })
      }
      let resumed = try make(p)
      try resumed.loadStateTensors(saved)
      try train(resumed, p, o, steps: half..<Self.steps)
      try assertParameters(p, match: run, o)
    }
  }

  func testStateNamesFollowTorchNumbering() throws {
    let o = try oracle()
    let p = try initialParameters(o)
    let adam = try Adam(groups(p, multiplier: 0.5, decay: 0), amsgrad: true)
    try train(adam, p, o, steps: 0..<2)
    let state = try adam.stateTensors()
    XCTAssertEqual(state.map(\.0).prefix(4), ["param.0.exp_avg", "param.0.exp_avg_sq", "param.0.max_exp_avg_sq", "param.0.step"])
    XCTAssertEqual(state.count, 16)
    XCTAssertEqual(try XCTUnwrap(state.first { $0.0 == "param.3.step" }?.1).item(), 2)
    XCTAssertThrowsError(try adam.loadStateTensors([("param.9.exp_avg", Tensor.zeros([1]))]))
    XCTAssertThrowsError(try adam.loadStateTensors([("param.0.momentum_buffer", Tensor.zeros([1]))]))
  }

  func testNesterovNeedsMomentum() {
    XCTAssertThrowsError(try SGD(parameters: [], nesterov: true))
  }
}

private let optimizerScript = """
  import math
  import torch.nn.functional as F
  torch.manual_seed(1)
  names = ["w1", "b1", "w2", "b2"]
  init = [torch.randn(6, 4) * 0.5, torch.randn(6) * 0.1, torch.randn(3, 6) * 0.5, torch.randn(3) * 0.1]
  for n, t in zip(names, init):
      save("init." + n, t)
  STEPS = 6
  batches = [(torch.randn(8, 4), torch.randint(0, 3, (8,))) for _ in range(STEPS)]
  for i, (x, y) in enumerate(batches):
      save(f"x.{i}", x); save(f"y.{i}", y)

  def params():
      return [t.clone().requires_grad_(True) for t in init]
  def loss(p, i):
      x, y = batches[i]
      return F.cross_entropy(F.linear(F.relu(F.linear(x, p[0], p[1])), p[2], p[3]), y)
  def lr(step):
      return 0.1 * 0.9 ** step
  def groups(p, multiplier, decay):
      return [{"params": p[:2], "multiplier": 1.0}, {"params": p[2:], "multiplier": multiplier, "weight_decay": decay}]
  def train(run, make, grouped=None):
      p = params()
      param_groups = groups(p, *grouped) if grouped else [{"params": p, "multiplier": 1.0}]
      opt = make(param_groups)
      for step in range(STEPS):
          for g in opt.param_groups:
              g["lr"] = lr(step) * g["multiplier"]
          opt.zero_grad()
          loss(p, step).backward()
          opt.step()
      for n, t in zip(names, p):
          save(f"{run}.{n}", t)

  train("sgd", lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=1e-2, foreach=False), (0.5, 0.0))
  train("nesterov", lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2, foreach=False))
  train("adam", lambda g: torch.optim.Adam(g, lr=0.1, weight_decay=1e-2, foreach=False), (0.5, 0.0))
  train("amsgrad", lambda g: torch.optim.Adam(g, lr=0.1, betas=(0.8, 0.99), eps=1e-6, amsgrad=True, foreach=False))
  train("adamw", lambda g: torch.optim.AdamW(g, lr=0.1, weight_decay=0.05, foreach=False), (2.0, 0.0))

  for run, norm_type in [("clip2", 2.0), ("clip_inf", math.inf)]:
      p = params()
      loss(p, 0).backward()
      save(run + ".total", torch.nn.utils.clip_grad_norm_(p, 0.5, norm_type=norm_type))
      for n, t in zip(names, p):
          save(f"{run}.{n}", t.grad)

  # tfvos's gradient averaging: the mean gradient of 3 batches per step.
  p = params()
  opt = torch.optim.SGD(p, lr=0.1, momentum=0.9, foreach=False)
  for step in range(2):
      opt.zero_grad()
      for i in range(3):
          (loss(p, 3 * step + i) / 3).backward()
      opt.step()
  for n, t in zip(names, p):
      save(f"accumulated.{n}", t)
  """
