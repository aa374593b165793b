import SegKitNN
import SegKitTestSupport
import XCTest

/// Initialisers against torch.nn.init: after the same seed the values must be
/// identical, since both draw through the same libtorch generator calls.
final class InitTests: XCTestCase {
  private static let script = """
    torch.set_num_threads(2)
    import torchvision
    from torch.nn import init

    class Separable(nn.Module):
        def __init__(self, i, o):
            super().__init__()
            self.depthwise = nn.Conv2d(i, i, 3, padding=1, groups=i, bias=False)
            self.pointwise = nn.Conv2d(i, o, 1)

    def seeded_module(name, seed, make):
        torch.manual_seed(seed)
        save_state(name, make())

    seeded_module('conv', 1, lambda: nn.Conv2d(3, 5, 3))
    seeded_module('deconv', 2, lambda: nn.ConvTranspose2d(4, 6, 2, groups=2))
    seeded_module('linear', 3, lambda: nn.Linear(6, 4))
    seeded_module('se', 10, lambda: torchvision.ops.SqueezeExcitation(8, 4))
    seeded_module('separable', 11, lambda: Separable(4, 6))

    def seeded_init(name, seed, shape, fill):
        torch.manual_seed(seed)
        t = torch.empty(shape)
        fill(t)
        save(name, t)

    seeded_init('kaiming_uniform_default', 12, (6, 4, 3, 3), init.kaiming_uniform_)
    seeded_init('kaiming_uniform_fan_out_relu', 4, (5, 3, 2, 2),
                lambda t: init.kaiming_uniform_(t, mode='fan_out', nonlinearity='relu'))
    seeded_init('kaiming_normal_leaky', 5, (5, 3, 2, 2), lambda t: init.kaiming_normal_(t, a=0.1))
    seeded_init('kaiming_normal_fan_out_relu', 13, (8, 4, 3, 3),
                lambda t: init.kaiming_normal_(t, mode='fan_out', nonlinearity='relu'))
    seeded_init('xavier_uniform_tanh', 6, (4, 6), lambda t: init.xavier_uniform_(t, gain=init.calculate_gain('tanh')))
    seeded_init('xavier_normal', 7, (4, 6, 3, 3), init.xavier_normal_)
    seeded_init('normal', 8, (3, 4), lambda t: init.normal_(t, 0.5, 2))
    seeded_init('uniform', 9, (3, 4), lambda t: init.uniform_(t, -1, 2))
    seeded_init('constant', 0, (2, 3), lambda t: init.constant_(t, 0.25))

    # FCN's upsample_filt, and deconvolution weights with it on the channel diagonal.
    def upsample_filt(size):
        factor = (size + 1) // 2
        center = factor - 1 if size % 2 == 1 else factor - 0.5
        og = np.ogrid[:size, :size]
        return (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
    for size in (1, 3, 4, 5, 16):
        save('bilinear/%d' % size, torch.from_numpy(upsample_filt(size)).float())
    for i, o in ((3, 3), (2, 3)):
        weight = np.zeros((i, o, 4, 4))
        weight[range(min(i, o)), range(min(i, o)), :, :] = upsample_filt(4)
        save('bilinear/weight_%d_%d' % (i, o), torch.from_numpy(weight).float())

    gains = {name: init.calculate_gain(name) for name in ('linear', 'conv2d', 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'selu')}
    gains['leaky_relu_0.2'] = init.calculate_gain('leaky_relu', 0.2)
    fans = [list(init._calculate_fan_in_and_fan_out(torch.empty(s))) for s in ((4, 6), (5, 3, 2, 2), (2, 3, 1, 4, 5))]
    save_meta({'gains': gains, 'fans': fans})
    """

  nonisolated(unsafe) private static var cached: Result<OracleTensors, Error>?

  private func oracle() throws -> OracleTensors {
    if Self.cached == nil { Self.cached = Result { try OracleTensors.run(Self.script) } }
    return try Self.cached!.get()
  }

  private func assertIdentical(_ module: Module, _ name: String, line: UInt = #line) throws {
    let oracle = try oracle()
    let state = try module.stateDict()
    XCTAssertEqual(state.map(\.0).sorted(), try oracle.entries(under: name).map(\.0), line: line)
    for (key, value) in state {
      try assertMatchesOracle(value, oracle["\(name)/\(key)"], rtol: 0, atol: 0, "\(name).\(key)", line: line)
    }
  }

  func testDefaultLayerInitialisationMatchesTorch() throws {
    Torch.manualSeed(1)
    try assertIdentical(Conv2d(3, 5, kernelSize: 3), "conv")
    Torch.manualSeed(2)
    try assertIdentical(ConvTranspose2d(4, 6, kernelSize: 2, groups: 2), "deconv")
    Torch.manualSeed(3)
    try assertIdentical(Linear(6, 4), "linear")
    Torch.manualSeed(10)
    try assertIdentical(SqueezeExcitation(inputChannels: 8, squeezeChannels: 4), "se")
    Torch.manualSeed(11)
    try assertIdentical(DepthwiseSeparableConv2d(4, 6), "separable")
  }

  func testInitialisersMatchTorch() throws {
    let oracle = try oracle()
    let cases: [(String, UInt64, [Int], (Tensor) throws -> Void)] = [
      ("kaiming_uniform_default", 12, [6, 4, 3, 3], { try Init.kaimingUniform_($0) }),
      ("kaiming_uniform_fan_out_relu", 4, [5, 3, 2, 2], { try Init.kaimingUniform_($0, mode: .fanOut, nonlinearity: .relu) }),
      ("kaiming_normal_leaky", 5, [5, 3, 2, 2], { try Init.kaimingNormal_($0, a: 0.1) }),
      ("kaiming_normal_fan_out_relu", 13, [8, 4, 3, 3], { try Init.kaimingNormal_($0, mode: .fanOut, nonlinearity: .relu) }),
      ("xavier_uniform_tanh", 6, [4, 6], { try Init.xavierUniform_($0, gain: Init.calculateGain(.tanh)) }),
      ("xavier_normal", 7, [4, 6, 3, 3], { try Init.xavierNormal_($0) }),
      ("normal", 8, [3, 4], { try Init.normal_($0, mean: 0.5, std: 2) }),
      ("uniform", 9, [3, 4], { try Init.uniform_($0, from: -1, to: 2) }),
      ("constant", 0, [2, 3], { try Init.constant_($0, 0.25) }),
    ]
    for (name, seed, shape, fill) in cases {
      Torch.manualSeed(seed)
      let tensor = try Tensor.empty(shape)
      try fill(tensor)
      try assertMatchesOracle(tensor, oracle[name], rtol: 0, atol: 0, name)
    }
  }

  func testInitialisersDoNotRecordGradients() throws {
    let weight = try Tensor.empty([3, 2]).requiresGrad(true)
    try Init.kaimingUniform_(weight)
    try Init.zeros_(weight)
    XCTAssertTrue(weight.isLeaf)
    XCTAssertEqual(try weight.sum().item(), 0)
  }

  func testGainsAndFans() throws {
    let oracle = try oracle()
    let gains = try XCTUnwrap(oracle.meta["gains"] as? [String: Double])
    let ours: [String: Double] = [
      "linear": Init.calculateGain(.linear), "conv2d": Init.calculateGain(.conv), "sigmoid": Init.calculateGain(.sigmoid),
      "tanh": Init.calculateGain(.tanh), "relu": Init.calculateGain(.relu), "leaky_relu": Init.calculateGain(.leakyReLU),
      "selu": Init.calculateGain(.selu), "leaky_relu_0.2": Init.calculateGain(.leakyReLU, param: 0.2),
    ]
    XCTAssertEqual(ours, gains)
    let fans = try [[4, 6], [5, 3, 2, 2], [2, 3, 1, 4, 5]].map { try Init.fans(Tensor.empty($0)) }
    XCTAssertEqual(fans.map { [$0.fanIn, $0.fanOut] }, oracle.meta["fans"] as? [[Int]])
    XCTAssertThrowsError(try Init.fans(Tensor.empty([3])))
  }

  func testBilinearUpsamplingKernel() throws {
    let oracle = try oracle()
    for size in [1, 3, 4, 5, 16] {
      try assertMatchesOracle(Init.bilinearUpsamplingKernel(size: size), oracle["bilinear/\(size)"], "kernel \(size)")
    }
    for (inChannels, outChannels) in [(3, 3), (2, 3)] {
      let deconv = try ConvTranspose2d(inChannels, outChannels, kernelSize: 4, stride: 2, padding: 1, bias: false)
      try Init.bilinearUpsampling_(deconv.weight)
      try assertMatchesOracle(deconv.weight, oracle["bilinear/weight_\(inChannels)_\(outChannels)"], "weight")
    }
  }
}
