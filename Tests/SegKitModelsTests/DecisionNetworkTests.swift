import Foundation
import SegKitModels
import SegKitTestSupport
import XCTest

/// DVSNet's decision network against an independent PyTorch construction (eval: no
/// dropout), features resized to its grid on the way in.
final class DecisionNetworkTests: XCTestCase {
  func testMatchesPyTorch() throws {
    Torch.manualSeed(31)
    let network = try DecisionNetwork(featureChannels: 24, grid: Size2(4, 5))
    network.eval()
    let state = try network.stateDict()
    XCTAssertEqual(state.map(\.0), ["conv.weight", "conv.bias"] + (0..<4).flatMap { ["fc\($0).weight", "fc\($0).bias"] })
    XCTAssertEqual(try state.first { $0.0 == "fc0.bias" }?.1.toArray(Float.self).first, 0.1)
    let features = try Tensor.randn([3, 24, 3, 7])
    let oracle = try OracleTensors.run(#"""
      inputs = load_inputs()
      class OracleDecision(nn.Module):
          def __init__(self, c, h, w):
              super().__init__()
              self.grid = (h, w)
              self.conv = nn.Conv2d(c, 96, 3, 1, 1)
              self.fc0 = nn.Linear(96 * h * w, 1024); self.fc1 = nn.Linear(1024, 1024)
              self.fc2 = nn.Linear(1024, 10); self.fc3 = nn.Linear(10, 1)
          def forward(self, x):
              x = F.interpolate(x, size=self.grid, mode="bilinear", align_corners=False)
              x = F.leaky_relu(self.conv(x), 0.1).flatten(1)
              for fc in (self.fc0, self.fc1, self.fc2, self.fc3):
                  x = F.leaky_relu(fc(x), 0.1)
              return x[:, 0]
      net = OracleDecision(24, 4, 5).eval()
      net.load_state_dict({k[6:]: v for k, v in inputs.items() if k.startswith("state/")})
      with torch.no_grad():
          save("score", net(inputs["features"]))
      """#, inputs: [("features", features)] + state.map { ("state/\($0.0)", $0.1) })
    let score = try Torch.withNoGrad { try network(features) }
    XCTAssertEqual(score.shape, [3])
    try assertMatchesOracle(score, try oracle["score"], rtol: 1e-4, atol: 1e-5, "score")

    // Dropout acts in training only.
    network.train()
    let first = try Torch.withNoGrad { try network(features) }, second = try Torch.withNoGrad { try network(features) }
    XCTAssertFalse(try first.allClose(second, rtol: 1e-6, atol: 1e-6))
    XCTAssertThrowsError(try network(try Tensor.zeros([1, 23, 4, 5])))
  }
}
