import SegKitNN
import SegKitTestSupport
import XCTest

/// torchvision's ResNet BasicBlock, registered in torchvision's order.
private final class BasicBlock: Module, Layer {
  let conv1: Conv2d
  let bn1: BatchNorm2d
  let relu = ReLU()
  let conv2: Conv2d
  let bn2: BatchNorm2d
  let downsample: Sequential?

  init(_ inplanes: Int, _ planes: Int, stride: Int = 1) throws {
    conv1 = try Conv2d(inplanes, planes, kernelSize: 3, stride: Size2(stride), padding: 1, bias: false)
    bn1 = try BatchNorm2d(planes)
    conv2 = try Conv2d(planes, planes, kernelSize: 3, padding: 1, bias: false)
    bn2 = try BatchNorm2d(planes)
    downsample = stride == 1 && inplanes == planes
      ? nil
      : Sequential(try Conv2d(inplanes, planes, kernelSize: 1, stride: Size2(stride), bias: false), try BatchNorm2d(planes))
    super.init()
    registerModule("conv1", conv1)
    registerModule("bn1", bn1)
    registerModule("relu", relu)
    registerModule("conv2", conv2)
    registerModule("bn2", bn2)
    if let downsample { registerModule("downsample", downsample) }
  }

  func forward(_ x: Tensor) throws -> Tensor {
    let out = try bn2(conv2(relu(bn1(conv1(x)))))
    return try relu(out + (downsample.map { try $0(x) } ?? x))
  }
}

/// A torchvision-like stack: conv, BN, ReLU, a nested Sequential holding an SE block, dropout.
private func makeStack() throws -> Sequential {
  Sequential(
    try Conv2d(3, 8, kernelSize: 3, bias: false), try BatchNorm2d(8), ReLU(),
    Sequential(try SqueezeExcitation(inputChannels: 8, squeezeChannels: 2), try Conv2d(8, 4, kernelSize: 1)),
    Dropout2d(p: 0.1))
}

/// Registration, naming, modes, freezing, state-dict loading and conversion, against
/// torchvision's modules where torch defines the answer.
final class ModuleTests: XCTestCase {
  private static let script = """
    torch.set_num_threads(2)
    import torchvision
    from torchvision.models.resnet import BasicBlock
    torch.manual_seed(0)

    def describe(m):
        return {
            'state': [[k, list(v.shape), str(v.dtype).replace('torch.', '')] for k, v in m.state_dict().items()],
            'parameters': [k for k, _ in m.named_parameters()],
            'buffers': [k for k, _ in m.named_buffers()],
            'modules': [k for k, _ in m.named_modules()],
            'count': sum(p.numel() for p in m.parameters()),
        }

    block = BasicBlock(4, 8, stride=2, downsample=nn.Sequential(nn.Conv2d(4, 8, 1, stride=2, bias=False),
                                                                 nn.BatchNorm2d(8)))
    with torch.no_grad():
        for bn in (block.bn1, block.bn2, block.downsample[1]):
            bn.weight.normal_()
            bn.bias.normal_()
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2)
    stack = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Sequential(torchvision.ops.SqueezeExcitation(8, 2), nn.Conv2d(8, 4, 1)), nn.Dropout2d(0.1))
    save_state('block/state', block)
    x = torch.randn(2, 4, 6, 6)
    save('block/x', x)
    save('block/y', block.eval()(x))
    meta = {'block': describe(block), 'stack': describe(stack)}
    meta['double'] = [[k, str(v.dtype).replace('torch.', '')] for k, v in block.double().state_dict().items()]
    save_meta(meta)
    """

  nonisolated(unsafe) private static var cached: Result<OracleTensors, Error>?

  private func oracle() throws -> OracleTensors {
    if Self.cached == nil { Self.cached = Result { try OracleTensors.run(Self.script) } }
    return try Self.cached!.get()
  }

  private func loadedBlock() throws -> BasicBlock {
    let block = try BasicBlock(4, 8, stride: 2)
    try block.loadStateDict(oracle().entries(under: "block/state"))
    return block
  }

  // MARK: Names, order and sizes

  private func assertMatchesTorch(_ module: Module, _ key: String, line: UInt = #line) throws {
    let expected = try XCTUnwrap(oracle().meta[key] as? [String: Any], line: line)
    let state = try module.stateDict().map { "\($0.0) \($0.1.shape) \($0.1.dtype)" }
    let torchState = try XCTUnwrap(expected["state"] as? [[Any]], line: line).map { "\($0[0]) \($0[1]) \($0[2])" }
    XCTAssertEqual(state, torchState, "state dict", line: line)
    XCTAssertEqual(module.namedParameters().map(\.0), expected["parameters"] as? [String], line: line)
    XCTAssertEqual(module.namedBuffers().map(\.0), expected["buffers"] as? [String], line: line)
    XCTAssertEqual(module.namedModules().map(\.0), expected["modules"] as? [String], line: line)
    XCTAssertEqual(module.parameterCount, expected["count"] as? Int, line: line)
    XCTAssertEqual(module.trainableParameterCount, module.parameterCount, line: line)
  }

  func testBasicBlockMatchesTorchvision() throws {
    try assertMatchesTorch(BasicBlock(4, 8, stride: 2), "block")
  }

  func testNestedSequentialWithSqueezeExcitationMatchesTorch() throws {
    try assertMatchesTorch(makeStack(), "stack")
  }

  func testLoadedBlockComputesTorchsOutput() throws {
    let block = try loadedBlock().eval()
    try assertMatchesOracle(block(oracle()["block/x"]), oracle()["block/y"], "block output")
  }

  func testRegistration() throws {
    let module = Module()
    let weight = try module.registerParameter("weight", Tensor.ones([2]))
    XCTAssertTrue(weight.requiresGrad)
    module.registerBuffer("kept", try Tensor.zeros([1]))
    module.registerBuffer("scratch", try Tensor.zeros([3]), persistent: false)
    let child = module.registerModule("child", try Linear(2, 1))
    XCTAssertTrue(module.child("child") === child)
    XCTAssertTrue(module.parameter("weight") === weight)
    XCTAssertEqual(try module.stateDict().map(\.0), ["weight", "kept", "child.weight", "child.bias"])
    XCTAssertEqual(module.namedBuffers().map(\.0), ["kept", "scratch"])
    XCTAssertFalse(try module.stateDict()[0].1.requiresGrad, "state-dict values are detached")
  }

  func testTiedParametersStayTied() throws {
    let shared = try Tensor.ones([2])
    let root = Module(), first = Module(), second = Module()
    try first.registerParameter("w", shared)
    try second.registerParameter("w", shared)
    root.registerModule("first", first)
    root.registerModule("second", second)
    XCTAssertEqual(root.namedParameters().map(\.0), ["first.w"], "listed once, as torch")
    XCTAssertEqual(try root.stateDict().map(\.0), ["first.w", "second.w"])
    try root.to(dtype: .float64)
    XCTAssertTrue(first.parameter("w") === second.parameter("w"))
    XCTAssertEqual(first.parameter("w")?.dtype, .float64)

    try (first.parameter("w")!.sum() * 3).backward()
    XCTAssertEqual(try root.parameters()[0].grad?.toArray(Double.self), [3, 3])
    try root.zeroGrad()
    XCTAssertNil(root.parameters()[0].grad)
  }

  // MARK: Modes

  func testTrainAndEvalPropagate() throws {
    let stack = try makeStack()
    XCTAssertTrue(stack.modules().allSatisfy(\.isTraining))
    stack.eval()
    XCTAssertTrue(stack.modules().allSatisfy { !$0.isTraining })
    let x = try Tensor.randn([1, 3, 6, 6])
    XCTAssertTrue(try stack(x).allClose(stack(x)), "evaluation is deterministic")
    stack.train()
    XCTAssertTrue(stack.modules().allSatisfy(\.isTraining))
  }

  func testFreezeWithBatchNormStatistics() throws {
    let block = try loadedBlock()
    let before = try block.stateDict().map { ($0.0, try $0.1.clone()) }
    try block.freeze(batchNormStatistics: true)
    block.train()
    XCTAssertEqual(block.trainableParameterCount, 0)
    let x = try oracle()["block/x"].requiresGrad(true)
    let y = try block(x)
    try assertMatchesOracle(y, oracle()["block/y"], "frozen statistics act as in evaluation")
    try y.sum().backward()
    XCTAssertNotNil(x.grad)
    XCTAssertTrue(block.parameters().allSatisfy { $0.grad == nil })
    for ((name, value), (_, old)) in zip(try block.stateDict(), before) {
      XCTAssertTrue(try value.allClose(old, rtol: 0, atol: 0), "\(name) changed")
    }

    try block.unfreeze()
    XCTAssertEqual(block.trainableParameterCount, block.parameterCount)
    _ = try block(x)
    XCTAssertEqual(try block.bn1.numBatchesTracked?.item(), 1, "statistics update again")
  }

  func testFreezeSubtreeOnly() throws {
    let block = try BasicBlock(4, 8, stride: 2)
    let downsample = try XCTUnwrap(block.downsample)
    try downsample.freeze()
    XCTAssertEqual(block.trainableParameterCount, block.parameterCount - downsample.parameterCount)
    XCTAssertFalse(block.bn1.statisticsFrozen)
    let norm = try XCTUnwrap(downsample[1] as? BatchNorm2d)
    XCTAssertFalse(norm.statisticsFrozen, "statistics stay live unless asked")
  }

  // MARK: Loading state dicts

  func testStrictLoadListsEveryProblemInOneError() throws {
    let block = try BasicBlock(4, 8, stride: 2)
    let original = try block.conv1.weight.clone()
    var entries = try loadedBlock().stateDict().filter { $0.0 != "bn1.running_var" && $0.0 != "conv2.weight" }
    entries.append(("fc.weight", try Tensor.zeros([2])))
    entries.append(("conv2.weight", try Tensor.zeros([8, 8, 1, 1])))
    XCTAssertThrowsError(try block.loadStateDict(entries)) { error in
      let failure = error as? StateDictError
      XCTAssertEqual(failure?.missing, ["bn1.running_var"])
      XCTAssertEqual(failure?.unexpected, ["fc.weight"])
      XCTAssertEqual(failure?.mismatched.map(\.name), ["conv2.weight"])
      let message = "\(error)"
      for fragment in ["BasicBlock", "\"bn1.running_var\"", "\"fc.weight\"", "conv2.weight", "[8, 8, 1, 1]", "[8, 8, 3, 3]"] {
        XCTAssertTrue(message.contains(fragment), "'\(fragment)' not in: \(message)")
      }
    }
    XCTAssertTrue(try block.conv1.weight.allClose(original, rtol: 0, atol: 0), "a failed load copies nothing")
  }

  func testNonStrictLoadReportsButShapeMismatchStillFails() throws {
    let block = try BasicBlock(4, 8, stride: 2)
    var entries = try loadedBlock().stateDict().filter { !$0.0.hasPrefix("downsample.") }
    entries.append(("fc.bias", try Tensor.zeros([3])))
    let report = try block.loadStateDict(entries, strict: false)
    XCTAssertEqual(report.missing, ["downsample.0.weight", "downsample.1.weight", "downsample.1.bias",
                                    "downsample.1.running_mean", "downsample.1.running_var"])
    XCTAssertEqual(report.unexpected, ["fc.bias"])
    XCTAssertEqual(report.loaded.count, 12)
    try assertMatchesOracle(block.bn2.runningMean, oracle()["block/state/bn2.running_mean"], "loaded value")

    let mismatched = try entries.map { $0.0 == "bn1.weight" ? ($0.0, try Tensor.zeros([4])) : $0 }
    XCTAssertThrowsError(try block.loadStateDict(mismatched, strict: false))
  }

  func testRenameAndSkipReuseAllButTheLastLayer() throws {
    let source = try loadedBlock().stateDict()
    let checkpoint = source.map { ("backbone.\($0.0)", $0.1) } + [("aux.weight", try Tensor.zeros([1]))]
    let block = try BasicBlock(4, 8, stride: 2)
    let untouched = try block.conv2.weight.clone()
    let report = try block.loadStateDict(
      checkpoint,
      rename: { $0.hasPrefix("backbone.") ? String($0.dropFirst("backbone.".count)) : nil },
      skip: { $0.hasPrefix("conv2.") })
    XCTAssertEqual(report.skipped, ["conv2.weight"])
    XCTAssertEqual(report.missing, [])
    XCTAssertEqual(report.unexpected, [])
    XCTAssertTrue(try block.conv2.weight.allClose(untouched, rtol: 0, atol: 0))
    try assertMatchesOracle(block.conv1.weight, oracle()["block/state/conv1.weight"], "renamed value")
  }

  func testMissingBatchCountersAreAcceptedAndScalarsMayBeVectors() throws {
    let block = try BasicBlock(4, 8, stride: 2)
    let entries = try loadedBlock().stateDict().compactMap { name, value -> (String, Tensor)? in
      if name == "bn1.num_batches_tracked" { return (name, try Tensor([Int64(7)])) }
      return name.hasSuffix("num_batches_tracked") ? nil : (name, value)
    }
    try block.loadStateDict(entries)
    XCTAssertEqual(try block.bn1.numBatchesTracked?.item(), 7)
    XCTAssertEqual(try block.bn2.numBatchesTracked?.item(), 0)
  }

  func testLoadFromDictionaryAndStateDict() throws {
    let pairs = try loadedBlock().stateDict()
    let fromDictionary = try BasicBlock(4, 8, stride: 2)
    try fromDictionary.loadStateDict(Dictionary(uniqueKeysWithValues: pairs))
    let fromStateDict = try BasicBlock(4, 8, stride: 2)
    try fromStateDict.loadStateDict(StateDict(pairs))
    for block in [fromDictionary, fromStateDict] {
      try assertMatchesOracle(block.bn1.weight, oracle()["block/state/bn1.weight"], "loaded")
    }
  }

  func testLoadConvertsDtype() throws {
    let block = try BasicBlock(4, 8, stride: 2)
    let doubles = try loadedBlock().stateDict().map { ($0.0, $0.1.dtype == .float32 ? try $0.1.to(.float64) : $0.1) }
    try block.loadStateDict(doubles)
    XCTAssertEqual(block.conv1.weight.dtype, .float32)
    try assertMatchesOracle(block.conv1.weight, oracle()["block/state/conv1.weight"], "converted")
  }

  // MARK: Conversion and groups

  func testFloat64RoundTrip() throws {
    let block = try loadedBlock().eval()
    let x = try oracle()["block/x"]
    let before = try block.stateDict().map { ($0.0, try $0.1.clone()) }
    try block.to(dtype: .float64)
    let dtypes = try block.stateDict().map { [$0.0, $0.1.dtype.description] }
    XCTAssertEqual(dtypes, try oracle().meta["double"] as? [[String]])
    XCTAssertEqual(block.conv1.weight.dtype, .float64, "layers read the converted tensors")
    XCTAssertTrue(block.parameters().allSatisfy(\.requiresGrad))
    try assertMatchesOracle(block(x.to(.float64)), oracle()["block/y"], "float64 output")

    try block.to(dtype: .float32)
    for ((name, value), (_, old)) in zip(try block.stateDict(), before) {
      XCTAssertEqual(value.dtype, old.dtype, name)
      XCTAssertTrue(try value.allClose(old, rtol: 0, atol: 0), "\(name) survives the round trip")
    }
    XCTAssertThrowsError(try block.to(dtype: .int32))
  }

  func testParameterGroups() throws {
    let model = Sequential(try Conv2d(3, 4, kernelSize: 3), try BatchNorm2d(4), try Conv2d(4, 2, kernelSize: 1))
    let groups = model.parameterGroups(lastLayer: { $0.hasPrefix("2.") }, lastLayerMultiplier: 10, noDecayOnBiasAndNorm: true)
    XCTAssertEqual(groups.map(\.learningRateMultiplier), [1, 1, 10, 10])
    XCTAssertEqual(groups.map(\.weightDecay), [nil, 0, nil, 0])
    func ids(_ tensors: [Tensor]) -> [ObjectIdentifier] { tensors.map(ObjectIdentifier.init) }
    let p = model.namedParameters().map(\.1)
    XCTAssertEqual(groups.map { ids($0.parameters) }, [ids([p[0]]), ids([p[1], p[2], p[3]]), ids([p[4]]), ids([p[5]])])

    try model[0].freeze()
    let plain = model.parameterGroups()
    XCTAssertEqual(plain.count, 1)
    XCTAssertEqual(plain[0].parameters.count, 4, "frozen parameters are left out")
  }
}
