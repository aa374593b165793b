import Foundation
import SegKitModels
import SegKitTestSupport
import XCTest

/// VGG16, VGG16-BN, GoogLeNet and Xception-65 against torchvision and timm: the
/// oracle builds each classification model with random weights and batch-norm
/// statistics (eval mode), saves its state dict and its four features; SegKit loads
/// the checkpoint with `loadClassificationCheckpoint` (classifier dropped, every
/// other key matching exactly) and must give the same features.
final class EncoderParityTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  /// Writes model.pth and io.safetensors: the inputs `odd` (67×91) and `even`
  /// (64×96), and features `odd.os32.N`, `even.os32.N`, and `even.os16.N` /
  /// `even.os8.N` of the model made dilated the way SegKit does it (timm's own
  /// output_stride for Xception).
  static let script = """
    import copy, sys, torch, torch.nn as nn, torch.nn.functional as F, torchvision, timm
    from safetensors.torch import save_file
    name, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    if name == "xception65":
        model = timm.create_model("xception65", pretrained=False)
    elif name == "googlenet":  # torchvision's init (std 0.01) would leave activations below batch norm's eps
        model = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    else:
        model = getattr(torchvision.models, name)(weights=None)
    # Random affine parameters, then running statistics measured on a random batch
    # (which keep activations near unit scale through the depth) and perturbed, so
    # that batch norm is really exercised.
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        m.weight.data.uniform_(0.5, 1.5); m.bias.data.uniform_(-0.2, 0.2)
        m.momentum = None; m.reset_running_stats()
    model.train()
    with torch.no_grad():
        model(torch.randn(2, 3, 96, 128))
    model.eval()
    for m in bns:
        m.momentum = 0.1
        m.running_mean.add_(torch.empty_like(m.running_mean).uniform_(-0.1, 0.1))
        m.running_var.mul_(torch.empty_like(m.running_var).uniform_(0.8, 1.2))

    class DilatedMaxPool(nn.Module):
        # A stride-1 max pool, taps `dilation` apart, on an input padded with -inf: bottom and
        # right only where it replaces a strided pool, all round for the Inception pool branch.
        def __init__(self, kernel, dilation, centred):
            super().__init__(); self.kernel, self.dilation = kernel, dilation
            r = dilation * (kernel - 1)
            self.pads = (r // 2,) * 4 if centred else (0, r, 0, r)
        def forward(self, x):
            return F.max_pool2d(F.pad(x, self.pads, value=float("-inf")), self.kernel, 1, 0, self.dilation)

    def dilate_convs(module, dilation):
        for m in module.modules():
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                m.dilation, m.padding = (dilation, dilation), (dilation, dilation)
            elif isinstance(m, nn.Sequential) and isinstance(m[0], nn.MaxPool2d):  # the Inception pool branch
                m[0] = DilatedMaxPool(3, dilation, centred=True)

    def dilated(output_stride):  # the model at output stride 16 or 8, modified as SegKit's encoders are
        if name == "xception65":
            variant = timm.create_model("xception65", pretrained=False, output_stride=output_stride)
            variant.load_state_dict(model.state_dict())
            return variant.eval()
        variant = copy.deepcopy(model)
        count = 1 if output_stride == 16 else 2
        if name == "googlenet":
            stages = [("maxpool3", ["inception4a", "inception4b", "inception4c", "inception4d", "inception4e"]),
                      ("maxpool4", ["inception5a", "inception5b"])][2 - count:]
            dilation = 1
            for pool, blocks in stages:
                old = getattr(variant, pool)
                setattr(variant, pool, DilatedMaxPool(old.kernel_size, dilation, centred=False))
                dilation *= 2
                for block in blocks: dilate_convs(getattr(variant, block), dilation)
        else:
            pools = [i for i, m in enumerate(variant.features) if isinstance(m, nn.MaxPool2d)]
            dilation = 1
            for p in pools[5 - count:]:
                variant.features[p] = DilatedMaxPool(2, dilation, centred=False)
                dilation *= 2
                for m in variant.features[p + 1:]:
                    if isinstance(m, nn.Conv2d): m.dilation, m.padding = (dilation, dilation), (dilation, dilation)
        return variant

    def features(variant, x):
        if name == "xception65":
            return variant.forward_intermediates(x, indices=[1, 2, 3, 4], intermediates_only=True)
        if name == "googlenet":
            taps = [variant.conv3, variant.inception3b, variant.inception4e, variant.inception5b]
        else:
            taps = [m for m in variant.features if isinstance(m, (nn.MaxPool2d, DilatedMaxPool))][1:]
        found = []
        hooks = [t.register_forward_hook(lambda m, i, o: found.append(o)) for t in taps]
        variant(x)
        for h in hooks: h.remove()
        return found

    odd, even = torch.randn(1, 3, 67, 91), torch.randn(1, 3, 64, 96)
    tensors = {"odd": odd, "even": even}
    with torch.no_grad():
        runs = [("odd.os32", model, odd), ("even.os32", model, even), ("even.os16", dilated(16), even), ("even.os8", dilated(8), even)]
        for prefix, variant, x in runs:
            for i, f in enumerate(features(variant, x)):
                tensors[f"{prefix}.{i}"] = f.contiguous()
    torch.save(model.state_dict(), out + "/model.pth")
    save_file(tensors, out + "/io.safetensors")
    """

  /// At output strides 16 and 8 the features must match the oracle's dilated model
  /// and, sampled every 2 or 4 pixels, the stride-32 ones: at sides divisible by 32
  /// the dilated network is exactly the original one evaluated on a denser grid.
  func checkEncoder(_ name: String) throws {
    let dir = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try Oracle.run(Self.script, arguments: [name, dir.path])
    let checkpoint = try StateDict.load(contentsOf: dir.appendingPathComponent("model.pth"))
    let io = try StateDict.load(contentsOf: dir.appendingPathComponent("io.safetensors"))
    let odd = io["odd"]!, even = io["even"]!

    let encoder = try EncoderRegistry.make(name)
    try encoder.loadClassificationCheckpoint(checkpoint)
    encoder.eval()
    let features = try Torch.withNoGrad { try encoder.features(odd) }
    XCTAssertEqual(features.map { $0.shape[1] }, encoder.featureChannels, "\(name) feature channels")
    try compare(features, io, "odd.os32", name)

    // Every batch norm follows a convolution the encoder names, so inference folds them all.
    XCTAssertEqual(try encoder.foldBatchNorm(), encoder.modules().filter { $0 is BatchNorm2d }.count, name)
    try compare(try Torch.withNoGrad { try encoder.features(odd) }, io, "odd.os32", "\(name) folded", tolerance: 1e-3)

    // Four input channels: the extra filters start as the mean of the RGB ones, so a
    // zero 4th channel leaves the features unchanged. Here, for the folded batch norms
    // above and for the sampled dilated features below, only the order of float sums
    // differs from the reference; through GoogLeNet's or Xception-65's depth, with
    // features up to ~20, that moves them by up to ~3e-4, hence the 1e-3 tolerance.
    let wide = try EncoderRegistry.make(name, inputChannels: 4)
    try wide.loadClassificationCheckpoint(checkpoint)
    wide.eval()
    let filters = try wide.stateDict().first { $0.0 == wide.inputConvolutionKey }!.1
    XCTAssertEqual(filters.shape[1], 4)
    let rgb = try filters.slice(dim: 1, end: 3)
    let extra = try filters.slice(dim: 1, start: 3)
    XCTAssertEqual(try (rgb - checkpoint[wide.inputConvolutionKey]!).abs().max().item(), 0)
    XCTAssertLessThan(try (extra - rgb.mean(dim: 1, keepDim: true)).abs().max().item(), 1e-7)
    let withZeros = try Tensor.cat([odd, Tensor.zeros([1, 1, odd.shape[2], odd.shape[3]])], dim: 1)
    try compare(
      try Torch.withNoGrad { try wide.features(withZeros) }, io, "odd.os32", "\(name) 4 channels", tolerance: 1e-3)

    for outputStride in [16, 8] {
      let dilated = try EncoderRegistry.make(name, outputStride: outputStride)
      XCTAssertEqual(dilated.outputStride, outputStride)
      try dilated.loadClassificationCheckpoint(checkpoint)
      dilated.eval()
      let features = try Torch.withNoGrad { try dilated.features(even) }
      try compare(features, io, "even.os\(outputStride)", name)
      let sampled = try zip([4, 8, 16, 32], features).map { nominal, feature in
        let step = nominal / min(nominal, outputStride)
        return try feature.slice(dim: 2, step: step).slice(dim: 3, step: step)
      }
      try compare(sampled, io, "even.os32", "\(name) os\(outputStride) sampled", tolerance: 1e-3)
    }
  }

  func compare(_ features: [Tensor], _ io: StateDict, _ prefix: String, _ label: String, tolerance: Double = 1e-4)
    throws
  {
    XCTAssertEqual(features.count, 4, label)
    for (index, got) in features.enumerated() {
      let expected = io["\(prefix).\(index)"]!
      XCTAssertEqual(got.shape, expected.shape, "\(label) \(prefix).\(index) shape")
      guard got.shape == expected.shape else { continue }
      let maxError = try (got - expected).abs().max().item()
      XCTAssertLessThan(maxError, tolerance, "\(label) \(prefix).\(index): max abs error \(maxError)")
    }
  }

  func testVGG16() throws { try checkEncoder("vgg16") }
  func testVGG16BN() throws { try checkEncoder("vgg16_bn") }
  func testGoogLeNet() throws { try checkEncoder("googlenet") }
  func testXception65() throws { try checkEncoder("xception65") }
}
