import Foundation
import SegKitModels
import SegKitTestSupport
import XCTest

/// FlowNet2-S and DVSNet's thin FlowNetS against an independent PyTorch construction
/// with flownet2-pytorch's key names, on random weights: the flow in pixels, the
/// finest prediction and the conv6_1 features.
final class FlowNetSTests: XCTestCase {
  /// The network as flownet2-pytorch's FlowNet2S (eval), built from its description.
  static let oracleNetwork = #"""
    def conv(i, o, k=3, s=1):
        return nn.Sequential(nn.Conv2d(i, o, k, s, (k - 1) // 2, bias=True), nn.LeakyReLU(0.1))
    def deconv(i, o):
        return nn.Sequential(nn.ConvTranspose2d(i, o, 4, 2, 1, bias=True), nn.LeakyReLU(0.1))
    class OracleFlowNetS(nn.Module):
        def __init__(self, e, d, k=None):
            super().__init__()
            self.conv1 = conv(6, e[0], 7, 2); self.conv2 = conv(e[0], e[1], 5, 2); self.conv3 = conv(e[1], e[2], 5, 2)
            self.conv3_1 = conv(e[2], e[3]); self.conv4 = conv(e[3], e[4], s=2); self.conv4_1 = conv(e[4], e[5])
            self.conv5 = conv(e[5], e[6], s=2); self.conv5_1 = conv(e[6], e[7]); self.conv6 = conv(e[7], e[8], s=2)
            self.conv6_1 = conv(e[8], e[9])
            c5, c4, c3, c2 = e[7] + d[0] + 2, e[5] + d[1] + 2, e[3] + d[2] + 2, e[1] + d[3] + 2
            self.deconv5 = deconv(e[9], d[0]); self.deconv4 = deconv(c5, d[1]); self.deconv3 = deconv(c4, d[2]); self.deconv2 = deconv(c3, d[3])
            self.predict_flow6 = nn.Conv2d(e[9], 2, 3, 1, 1); self.predict_flow5 = nn.Conv2d(c5, 2, 3, 1, 1)
            self.predict_flow4 = nn.Conv2d(c4, 2, 3, 1, 1); self.predict_flow3 = nn.Conv2d(c3, 2, 3, 1, 1)
            self.predict_flow2 = nn.Conv2d(c2, 2, 3, 1, 1)
            if k: self.predict_scale = nn.Conv2d(c2, k, 3, 1, 1)
            for name in ("6_to_5", "5_to_4", "4_to_3", "3_to_2"):
                setattr(self, "upsampled_flow" + name, nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=False))
        def forward(self, frames):   # [N, 3, 2, H, W], RGB 0..255
            mean = frames.contiguous().view(frames.shape[:2] + (-1,)).mean(-1).view(frames.shape[:2] + (1, 1, 1))
            x = (frames - mean) / 255.0
            x = torch.cat((x[:, :, 0], x[:, :, 1]), 1)
            c2 = self.conv2(self.conv1(x)); c3 = self.conv3_1(self.conv3(c2)); c4 = self.conv4_1(self.conv4(c3))
            c5 = self.conv5_1(self.conv5(c4)); c6 = self.conv6_1(self.conv6(c5))
            f6 = self.predict_flow6(c6)
            cat5 = torch.cat((c5, self.deconv5(c6), self.upsampled_flow6_to_5(f6)), 1); f5 = self.predict_flow5(cat5)
            cat4 = torch.cat((c4, self.deconv4(cat5), self.upsampled_flow5_to_4(f5)), 1); f4 = self.predict_flow4(cat4)
            cat3 = torch.cat((c3, self.deconv3(cat4), self.upsampled_flow4_to_3(f4)), 1); f3 = self.predict_flow3(cat3)
            cat2 = torch.cat((c2, self.deconv2(cat3), self.upsampled_flow3_to_2(f3)), 1); f2 = self.predict_flow2(cat2)
            scale = self.predict_scale(cat2) if hasattr(self, "predict_scale") else torch.zeros(1)
            return nn.Upsample(scale_factor=4, mode="bilinear")(f2 * 20.0), f2, c6, scale
    """#

  func check(_ widths: FlowNetS.Widths, scaleClasses: Int? = nil, name: String, height: Int, width: Int) throws {
    Torch.manualSeed(21)
    let network = try FlowNetS(widths: widths, scaleClasses: scaleClasses)
    network.eval()
    // DVSNet's scale head starts as the identity: weights 0, bias 1.
    if scaleClasses != nil {
      let initial = try network.stateDict()
      XCTAssertEqual(try initial.first { $0.0 == "predict_scale.weight" }?.1.abs().max().item(), 0)
      XCTAssertEqual(try initial.first { $0.0 == "predict_scale.bias" }?.1.min().item(), 1)
    }
    // Small weights keep the LeakyReLU chain in a useful range; the scale head gets random ones.
    try Torch.withNoGrad {
      for (name, parameter) in network.namedParameters() {
        if name == "predict_scale.weight" { try parameter.copy_(try Tensor.randn(parameter.shape) * 0.05) } else { try parameter.mul_(0.5) }
      }
    }
    let state = try network.stateDict()
    XCTAssertEqual(Array(state.map(\.0).prefix(3)), ["conv1.0.weight", "conv1.0.bias", "conv2.0.weight"])
    XCTAssertTrue(state.contains { $0.0 == "deconv5.0.weight" && $0.1.shape == [widths.encoder[9], widths.decoder[0], 4, 4] })
    XCTAssertTrue(state.contains { $0.0 == "upsampled_flow6_to_5.weight" })
    XCTAssertFalse(state.contains { $0.0 == "upsampled_flow6_to_5.bias" })
    let first = try Tensor.rand([1, 3, height, width]) * 255, second = try Tensor.rand([1, 3, height, width]) * 255
    let oracle = try OracleTensors.run(Self.oracleNetwork + "\n" + #"""
      inputs = load_inputs()
      net = OracleFlowNetS(\#(widths.encoder), \#(widths.decoder), \#(scaleClasses.map(String.init) ?? "None")).eval()
      net.load_state_dict({k[6:]: v for k, v in inputs.items() if k.startswith("state/")})
      frames = torch.stack([inputs["first"], inputs["second"]], 2)
      with torch.no_grad():
          flow, f2, c6, scale = net(frames)
      save("flow", flow); save("flow2", f2); save("conv6_1", c6); save("scale", scale)
      """#, inputs: [("first", first), ("second", second)] + state.map { ("state/\($0.0)", $0.1) })
    let output = try Torch.withNoGrad { try network.forward(try FlowNetS.input(first: first, second: second)) }
    let (flow2, coarser, features) = (output.flow2, output.coarser, output.features)
    if scaleClasses != nil {
      try assertMatchesOracle(output.scale, try oracle["scale"], rtol: 1e-4, atol: 1e-4, "\(name) predict_scale")
    } else {
      XCTAssertNil(output.scale)
    }
    let flow = try Torch.withNoGrad { try network.flow(from: first, to: second) }
    XCTAssertEqual(flow.shape, [1, 2, height, width])
    XCTAssertEqual(coarser.map { $0.shape[2] }, [height / 32, height / 16, height / 8, height / 64].sorted(by: >))
    try assertMatchesOracle(features, try oracle["conv6_1"], rtol: 1e-4, atol: 1e-4, "\(name) conv6_1")
    try assertMatchesOracle(flow2, try oracle["flow2"], rtol: 1e-4, atol: 1e-4, "\(name) predict_flow2")
    try assertMatchesOracle(flow, try oracle["flow"], rtol: 1e-4, atol: 1e-3, "\(name) flow")
    XCTAssertGreaterThan(try flow.abs().max().item(), 1e-3, "\(name): a flow of zeros would match trivially")
  }

  func testFlowNet2SMatchesPyTorch() throws { try check(.full, name: "FlowNet2-S", height: 64, width: 128) }

  func testThinFlowNetSMatchesPyTorch() throws { try check(.thin, scaleClasses: 19, name: "thin FlowNetS", height: 128, width: 192) }

  /// Other sizes are resized to multiples of 64 and the flow scaled back; a bad input is an error.
  func testAnySizeAndBadInput() throws {
    Torch.manualSeed(22)
    let network = try FlowNetS(widths: .thin)
    network.eval()
    let first = try Tensor.rand([1, 3, 50, 90]) * 255
    let flow = try Torch.withNoGrad { try network.flow(from: first, to: first) }
    XCTAssertEqual(flow.shape, [1, 2, 50, 90])
    XCTAssertThrowsError(try network.forward(try Tensor.zeros([1, 6, 50, 64]))) { XCTAssertTrue("\($0)".contains("multiples of 64"), "\($0)") }
    XCTAssertThrowsError(try FlowNetS.input(first: first, second: try Tensor.zeros([1, 3, 50, 91])))
  }
}
