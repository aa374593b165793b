import SegKitModels
import SegKitTestSupport
import XCTest

/// SegKit's FLOP counts at 512×512 equal torch.utils.flop_counter's on the same torchvision models.
final class FLOPsTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  func testCountsMatchTorchFlopCounter() throws {
    let names = ["fcn_resnet50", "lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large"]
    let script = """
      import sys, torch, torchvision
      from torch.utils.flop_counter import FlopCounterMode
      for name in sys.argv[1:]:
          with torch.device("meta"):
              kwargs = {} if name.startswith("lraspp") else {"aux_loss": True}
              model = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None, num_classes=21, **kwargs).eval()
              x = torch.zeros(1, 3, 512, 512)
              with FlopCounterMode(display=False) as counter, torch.no_grad():
                  model(x)
          print(name, counter.get_total_flops())
      """
    let expected = Dictionary(uniqueKeysWithValues: try Oracle.run(script, arguments: names)
      .split(separator: "\n").map { line -> (String, Int) in
        let parts = line.split(separator: " ")
        return (String(parts[0]), Int(parts[1])!)
      })
    for name in names {
      let counted = try FLOPCounter.count(ModelZoo.make(name, classes: 21), size: 512)
      XCTAssertEqual(counted, expected[name], name)
    }
  }
}
