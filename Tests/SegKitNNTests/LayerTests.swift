import SegKitNN
import SegKitTestSupport
import XCTest

/// Every layer against torch.nn on the same inputs and weights: outputs, input
/// gradients and parameter gradients. The oracle runs once for the whole class.
final class LayerTests: XCTestCase {
  private static let script = """
    torch.set_num_threads(2)
    import torchvision
    torch.manual_seed(0)

    class Separable(nn.Module):
        def __init__(self, i, o, k=3, dilation=1, bias=True):
            super().__init__()
            self.depthwise = nn.Conv2d(i, i, k, padding=dilation * (k - 1) // 2, dilation=dilation, groups=i, bias=False)
            self.pointwise = nn.Conv2d(i, o, 1, bias=bias)
        def forward(self, x):
            return self.pointwise(self.depthwise(x))

    def randomize_layer_norm(m):
        with torch.no_grad():
            if getattr(m, 'weight', None) is not None:
                m.weight.normal_()
                m.bias.normal_()
            if getattr(m, 'running_mean', None) is not None:
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2)
        return m

    def case(name, module, x, training=True, forward=None):
        module.train(training)
        save_state(name + '/state', module)
        x = x.clone().requires_grad_(True)
        y = forward(x) if forward else module(x)
        g = torch.randn_like(y)
        y.backward(g)
        for k, v in [('x', x), ('y', y), ('g', g), ('dx', x.grad)]:
            save(name + '/' + k, v)
        for k, p in module.named_parameters():
            save(name + '/grad/' + k, p.grad)
        save_state(name + '/after', module)

    r = torch.randn
    case('conv', nn.Conv2d(3, 4, 3, stride=2, padding=1), r(2, 3, 7, 7))
    case('conv_groups', nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2, bias=False), r(1, 4, 6, 5))
    case('conv_rect', nn.Conv2d(2, 3, (3, 1), stride=(1, 2), padding=(1, 0)), r(1, 2, 5, 6))
    case('deconv', nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1), r(1, 4, 3, 3))
    case('deconv_groups', nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), r(1, 4, 3, 4))
    deconv = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    case('deconv_size', deconv, r(1, 3, 4, 4), forward=lambda x: deconv(x, output_size=[8, 8]))
    case('separable', Separable(4, 6, dilation=2), r(1, 4, 6, 6))
    case('bn_train', randomize_layer_norm(nn.BatchNorm2d(3)), r(4, 3, 5, 5) * 2 + 1)
    case('bn_eval', randomize_layer_norm(nn.BatchNorm2d(3)), r(4, 3, 5, 5) * 2 + 1, training=False)
    case('bn_untracked', nn.BatchNorm2d(3, affine=False, track_running_stats=False), r(2, 3, 4, 4), training=False)
    case('gn', randomize_layer_norm(nn.GroupNorm(2, 4)), r(2, 4, 3, 3))
    case('linear', nn.Linear(5, 3), r(4, 5))
    for name, m in [('relu', nn.ReLU()), ('relu6', nn.ReLU6()), ('leaky_relu', nn.LeakyReLU(0.2)),
                    ('hardswish', nn.Hardswish()), ('hardsigmoid', nn.Hardsigmoid()), ('sigmoid', nn.Sigmoid()),
                    ('identity', nn.Identity())]:
        case(name, m, r(2, 3, 4, 4) * 4)
    case('maxpool', nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), r(1, 2, 7, 7))
    case('maxpool_dilated', nn.MaxPool2d(2, stride=1, dilation=2), r(1, 2, 6, 6))
    case('avgpool', nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), r(1, 2, 7, 7))
    case('adaptive', nn.AdaptiveAvgPool2d((2, 3)), r(1, 2, 5, 7))
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    case('unpool', unpool, r(1, 2, 4, 6), forward=lambda x: unpool(*pool(x)))
    pool_ceil = nn.MaxPool2d(2, ceil_mode=True, return_indices=True)
    case('unpool_odd', unpool, r(1, 2, 5, 5), forward=lambda x: unpool(*pool_ceil(x), output_size=[5, 5]))
    case('up_size', nn.Upsample(size=(5, 7), mode='bilinear', align_corners=False), r(1, 2, 3, 4))
    case('up_corners', nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True), r(1, 2, 3, 4))
    case('up_nearest', nn.Upsample(scale_factor=2, mode='nearest'), r(1, 2, 3, 4))
    case('up_fraction', nn.Upsample(scale_factor=1.5, mode='bilinear'), r(1, 2, 3, 4))
    se = torchvision.ops.SqueezeExcitation(8, 4, scale_activation=nn.Hardsigmoid)
    case('se', se, r(2, 8, 3, 3))
    seq = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), randomize_layer_norm(nn.BatchNorm2d(4)), nn.ReLU(),
                        nn.Dropout(0.5))
    case('sequential', seq, r(1, 3, 5, 5), training=False)

    # Running statistics over several training steps, then evaluation.
    ema, cumulative = randomize_layer_norm(nn.BatchNorm2d(3, momentum=0.3)), nn.BatchNorm2d(3, momentum=None)
    save_state('steps/ema/state', ema)
    save_state('steps/cumulative/state', cumulative)
    for step in range(3):
        x = r(4, 3, 2, 2) * (step + 1) + step
        save('steps/%d/x' % step, x)
        save('steps/%d/ema' % step, ema(x))
        save('steps/%d/cumulative' % step, cumulative(x))
        save_state('steps/%d/ema_state' % step, ema)
        save_state('steps/%d/cumulative_state' % step, cumulative)
    x = r(2, 3, 2, 2)
    save('steps/eval/x', x)
    save('steps/eval/ema', ema.eval()(x))
    save('steps/eval/cumulative', cumulative.eval()(x))

    # Dropout masks come from the same generator calls as torch's.
    x = r(2, 3, 4, 4)
    save('dropout/x', x)
    torch.manual_seed(123)
    save('dropout/y', nn.Dropout(0.3)(x))
    x = r(2, 6, 3, 3)
    save('dropout2d/x', x)
    torch.manual_seed(321)
    save('dropout2d/y', nn.Dropout2d(0.4)(x))
    """

  nonisolated(unsafe) private static var cached: Result<OracleTensors, Error>?

  private func oracle() throws -> OracleTensors {
    if Self.cached == nil { Self.cached = Result { try OracleTensors.run(Self.script) } }
    return try Self.cached!.get()
  }

  /// Loads the oracle's weights into `module` (strictly, so the state-dict names are
  /// torch's too), runs `forward` and backward, and compares everything.
  private func check(
    _ name: String, _ module: Module, training: Bool = true, file: StaticString = #filePath, line: UInt = #line,
    forward: (Tensor) throws -> Tensor
  ) throws {
    let oracle = try oracle()
    try module.loadStateDict(oracle.entries(under: "\(name)/state"))
    module.train(training)
    let x = try oracle["\(name)/x"].requiresGrad(true)
    let y = try forward(x)
    try assertMatchesOracle(y, oracle["\(name)/y"], "\(name) output", file: file, line: line)
    try y.backward(oracle["\(name)/g"])
    try assertMatchesOracle(x.grad, oracle["\(name)/dx"], "\(name) input gradient", file: file, line: line)
    let parameters = module.namedParameters()
    XCTAssertEqual(parameters.map(\.0).sorted(), try oracle.entries(under: "\(name)/grad").map(\.0), file: file, line: line)
    for (key, parameter) in parameters {
      try assertMatchesOracle(parameter.grad, oracle["\(name)/grad/\(key)"], "\(name) \(key) gradient", file: file, line: line)
    }
    for (key, value) in try module.stateDict() {
      try assertMatchesOracle(value, oracle["\(name)/after/\(key)"], "\(name) \(key) after", file: file, line: line)
    }
  }

  private func check(
    _ name: String, _ layer: any Layer, training: Bool = true, file: StaticString = #filePath, line: UInt = #line
  ) throws {
    try check(name, layer, training: training, file: file, line: line) { try layer($0) }
  }

  func testConvolution() throws {
    try check("conv", Conv2d(3, 4, kernelSize: 3, stride: 2, padding: 1))
    try check("conv_groups", Conv2d(4, 6, kernelSize: 3, padding: 2, dilation: 2, groups: 2, bias: false))
    try check("conv_rect", Conv2d(2, 3, kernelSize: [3, 1], stride: [1, 2], padding: [1, 0]))
  }

  func testTransposedConvolution() throws {
    try check("deconv", ConvTranspose2d(4, 2, kernelSize: 4, stride: 2, padding: 1))
    try check("deconv_groups", ConvTranspose2d(4, 6, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1, groups: 2))
    let deconv = try ConvTranspose2d(3, 2, kernelSize: 3, stride: 2, padding: 1)
    try check("deconv_size", deconv) { try deconv.forward($0, outputSize: 8) }
    XCTAssertThrowsError(try deconv.forward(Tensor.zeros([1, 3, 4, 4]), outputSize: 9))
  }

  func testDepthwiseSeparableConvolution() throws {
    let separable = try DepthwiseSeparableConv2d(4, 6, dilation: 2)
    XCTAssertEqual(separable.depthwise.groups, 4)
    try check("separable", separable)
  }

  func testBatchNorm() throws {
    try check("bn_train", BatchNorm2d(3))
    try check("bn_eval", BatchNorm2d(3), training: false)
    try check("bn_untracked", BatchNorm2d(3, affine: false, trackRunningStats: false), training: false)
  }

  func testBatchNormRunningStatisticsOverSteps() throws {
    let oracle = try oracle()
    let ema = try BatchNorm2d(3, momentum: 0.3), cumulative = try BatchNorm2d(3, momentum: nil)
    try ema.loadStateDict(oracle.entries(under: "steps/ema/state"))
    try cumulative.loadStateDict(oracle.entries(under: "steps/cumulative/state"))
    for step in 0..<3 {
      let x = try oracle["steps/\(step)/x"]
      try assertMatchesOracle(ema(x), oracle["steps/\(step)/ema"], "ema step \(step)")
      try assertMatchesOracle(cumulative(x), oracle["steps/\(step)/cumulative"], "cumulative step \(step)")
      for (layer, label) in [(ema, "ema"), (cumulative, "cumulative")] {
        for (key, value) in try layer.stateDict() {
          try assertMatchesOracle(value, oracle["steps/\(step)/\(label)_state/\(key)"], "\(label) \(key) step \(step)")
        }
      }
    }
    XCTAssertEqual(try ema.numBatchesTracked?.item(), 3)
    let x = try oracle["steps/eval/x"]
    try assertMatchesOracle(ema.eval()(x), oracle["steps/eval/ema"], "ema eval")
    try assertMatchesOracle(cumulative.eval()(x), oracle["steps/eval/cumulative"], "cumulative eval")
  }

  func testGroupNormAndLinear() throws {
    try check("gn", GroupNorm(2, 4))
    try check("linear", Linear(5, 3))
    XCTAssertThrowsError(try GroupNorm(3, 4))
  }

  func testActivations() throws {
    let layers: [(String, any Layer)] = [
      ("relu", ReLU()), ("relu6", ReLU6()), ("leaky_relu", LeakyReLU(negativeSlope: 0.2)), ("hardswish", Hardswish()),
      ("hardsigmoid", Hardsigmoid()), ("sigmoid", Sigmoid()), ("identity", Identity()),
    ]
    for (name, layer) in layers { try check(name, layer) }
  }

  func testPooling() throws {
    try check("maxpool", MaxPool2d(kernelSize: 3, stride: 2, padding: 1, ceilMode: true))
    try check("maxpool_dilated", MaxPool2d(kernelSize: 2, stride: 1, dilation: 2))
    try check("avgpool", AvgPool2d(kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false))
    try check("adaptive", AdaptiveAvgPool2d([2, 3]))
  }

  func testUnpooling() throws {
    let unpool = MaxUnpool2d(kernelSize: 2)
    let pool = MaxPool2d(kernelSize: 2), ceilPool = MaxPool2d(kernelSize: 2, ceilMode: true)
    try check("unpool", unpool) { x in
      let (pooled, indices) = try pool.forwardWithIndices(x)
      return try unpool(pooled, indices: indices)
    }
    try check("unpool_odd", unpool) { x in
      let (pooled, indices) = try ceilPool.forwardWithIndices(x)
      return try unpool(pooled, indices: indices, outputSize: 5)
    }
  }

  func testUpsample() throws {
    try check("up_size", Upsample(size: [5, 7], mode: .bilinear))
    try check("up_corners", Upsample(scaleFactor: 2, mode: .bilinear, alignCorners: true))
    try check("up_nearest", Upsample(scaleFactor: 2))
    try check("up_fraction", Upsample(scaleFactor: 1.5, mode: .bilinear))
  }

  func testSqueezeExcitation() throws {
    try check("se", SqueezeExcitation(inputChannels: 8, squeezeChannels: 4, scaleActivation: Hardsigmoid()))
  }

  func testSequential() throws {
    let sequential = Sequential(
      try Conv2d(3, 4, kernelSize: 3, padding: 1, bias: false), try BatchNorm2d(4), ReLU(), Dropout(p: 0.5))
    XCTAssertEqual(sequential.namedChildren.map(\.0), ["0", "1", "2", "3"])
    XCTAssertTrue(sequential[3] is Dropout)
    try check("sequential", sequential, training: false)
  }

  func testDropoutDrawsTorchsMasks() throws {
    let oracle = try oracle()
    Torch.manualSeed(123)
    try assertMatchesOracle(Dropout(p: 0.3)(oracle["dropout/x"]), oracle["dropout/y"], "dropout")
    Torch.manualSeed(321)
    try assertMatchesOracle(Dropout2d(p: 0.4)(oracle["dropout2d/x"]), oracle["dropout2d/y"], "dropout2d")
    let x = try oracle["dropout/x"]
    try assertMatchesOracle(Dropout(p: 0.3).eval()(x), x, "dropout in eval mode")
  }
}
