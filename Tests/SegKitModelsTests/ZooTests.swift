import Foundation
import SegKitModels
import SegKitTestSupport
import XCTest

final class ZooTests: XCTestCase {
  func testNames() throws {
    let names = ModelZoo.names
    XCTAssertEqual(Set(names).count, names.count, "unique")
    for name in ["fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101"] {
      XCTAssertTrue(names.contains(name), name)
    }
    for decoder in ModelZoo.decoders {
      for encoder in EncoderRegistry.names {
        XCTAssertTrue(names.contains("\(decoder)_\(encoder)"), "\(decoder)_\(encoder)")
      }
    }
  }

  /// Building is cheap (no forward pass); every name must build (with its fixed class
  /// count where it has one, and no other).
  func testEveryNameBuilds() throws {
    try SlowTest.skipInFastTier()
    for name in ModelZoo.names {
      XCTAssertNoThrow(try ModelZoo.make(name, classes: ModelZoo.fixedClasses(of: name) ?? 2), name)
    }
    XCTAssertEqual(ModelZoo.names.filter { ModelZoo.fixedClasses(of: $0) != nil },
                   ["osvos_vgg16"] + EncoderRegistry.names.filter { $0 != "vgg16" }.map { "osvos_\($0)" })
    XCTAssertThrowsError(try ModelZoo.make("osvos_vgg16", classes: 2))
  }

  func testUnknownNamesListCloseMatches() throws {
    func message(_ name: String) -> String {
      do {
        _ = try ModelZoo.make(name)
        return ""
      } catch {
        return "\(error)"
      }
    }
    XCTAssertTrue(message("unet_resnet19").contains("unet_resnet18"), message("unet_resnet19"))
    XCTAssertTrue(message("fcn_resnet5").contains("fcn_resnet50"), message("fcn_resnet5"))
    XCTAssertTrue(message("deeplabv3+_resnet50").contains("deeplabv3plus_resnet50"), message("deeplabv3+_resnet50"))
    let unrelated = message("transformer")
    XCTAssertTrue(unrelated.contains("unknown model 'transformer'") && unrelated.contains("linknet"), unrelated)
    XCTAssertThrowsError(try ModelZoo.make("unet_resnet18", outputStride: 12))
  }

  func testTorchvisionConfiguration() throws {
    let fcn = try ModelZoo.make("fcn_resnet50")
    XCTAssertEqual(fcn.encoder.outputStride, 8)
    XCTAssertEqual(fcn.outputNames, ["out", "aux"])
    XCTAssertEqual(try ModelZoo.make("fcn_resnet50", auxiliaryHead: false).outputNames, ["out"])
    let unet = try ModelZoo.make("unet_resnet18", inputChannels: 4)
    XCTAssertEqual(unet.encoder.outputStride, 32)
    XCTAssertEqual(unet.outputNames, ["out"])
    XCTAssertEqual(try unet.stateDict().first { $0.0 == "backbone.conv1.weight" }?.1.shape, [64, 4, 7, 7])
    XCTAssertEqual(try ModelZoo.make("deeplabv3plus_resnet18").encoder.outputStride, 16)
  }

  /// torchvision's fcn_resnet50 (random weights, 21 classes, auxiliary head) saved by
  /// torch and its resnet18 classification weights; the parameter count of fcn_resnet50.
  static let checkpoints = """
    import sys, torch, torchvision
    out = sys.argv[1]
    torch.manual_seed(0)
    model = torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, num_classes=21, aux_loss=True)
    torch.save(model.state_dict(), out + "/fcn_resnet50.pth")
    torch.save(torchvision.models.resnet18().state_dict(), out + "/resnet18.pth")
    print(sum(p.numel() for p in model.parameters()))
    """

  func testWeightsAndCatalog() throws {
    try SlowTest.skipInFastTier()
    let dir = try Oracle.temporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let count = try Oracle.run(Self.checkpoints, arguments: [dir.path]).trimmingCharacters(in: .whitespacesAndNewlines)

    // A whole torchvision checkpoint, by model name.
    let url = dir.appendingPathComponent("fcn_resnet50.pth")
    let model = try ModelZoo.make("fcn_resnet50", weights: url)
    let checkpoint = try StateDict.load(contentsOf: url)
    let loaded = Dictionary(uniqueKeysWithValues: try model.stateDict())
    for key in ["backbone.conv1.weight", "classifier.4.weight", "aux_classifier.0.weight"] {
      XCTAssertEqual(try (loaded[key]! - checkpoint[key]!).abs().max().item(), 0, key)
    }
    // Without the auxiliary head its weights are left out.
    XCTAssertNoThrow(try ModelZoo.make("fcn_resnet50", auxiliaryHead: false, weights: url))

    // A classification checkpoint initialises the encoder of any decoder.
    let resnet18 = dir.appendingPathComponent("resnet18.pth")
    let unet = try ModelZoo.make("unet_resnet18", classes: 2, weights: resnet18)
    let conv1 = try StateDict.load(contentsOf: resnet18)["conv1.weight"]!
    let unetConv1 = try unet.stateDict().first { $0.0 == "backbone.conv1.weight" }!.1
    XCTAssertEqual(try (unetConv1 - conv1).abs().max().item(), 0)

    // `segkit models`'s rows.
    let rows = try ModelZoo.catalog(["fcn_resnet50", "unet_resnet18"])
    XCTAssertEqual(rows.map(\.name), ["fcn_resnet50", "unet_resnet18"])
    XCTAssertEqual(rows[0].parameters, Int(count))
  }
}
