import SegKitModels
import XCTest

/// A model name is parsed once into its family, and the family gives the name back.
final class ModelFamilyTests: XCTestCase {
  func testEveryZooNameParsesAndRoundTrips() throws {
    for name in ModelZoo.names + ModelZoo.maskRNNNames + ModelZoo.flowNetworkNames {
      let family = try XCTUnwrap(ModelFamily(name: name), name)
      XCTAssertEqual(family.name, name)
    }
  }

  func testFamiliesAreToldApartByTypeNotPrefix() throws {
    XCTAssertEqual(ModelFamily(name: "deeplabv3_resnet50"), .torchvision("deeplabv3_resnet50"))
    XCTAssertEqual(ModelFamily(name: "deeplabv3_resnet18"), .semantic(decoder: .deeplabv3, encoder: "resnet18"))
    XCTAssertEqual(ModelFamily(name: "osvos_vgg16"), .osvos(encoder: "vgg16"))
    XCTAssertEqual(ModelFamily(name: "maskrnn_resnet18"), .maskRNN(encoder: "resnet18"))
    XCTAssertEqual(ModelFamily(name: "maskrnn_resnet18")?.maskRNNStreams, .osvos(encoder: "resnet18"))
    XCTAssertEqual(ModelFamily(name: "flownets_thin")?.flowWidths, .thin)
    XCTAssertEqual(ModelZoo.fixedClasses(of: "maskrnn_vgg16"), 1)
    XCTAssertNil(ModelZoo.fixedClasses(of: "unet_resnet18"))
    for unknown in ["", "maskrnn_", "osvos_nothing", "unet", "unet_nothing", "flownets"] {
      XCTAssertNil(ModelFamily(name: unknown), unknown)
    }
    XCTAssertThrowsError(try ModelFamily.parse("flownets")) { XCTAssertTrue("\($0)".contains("flownets"), "\($0)") }
  }

  func testMaskRNNIsBuiltFromItsTwoStreams() throws {
    let network = try MaskRNN(appearance: try OSVOS(encoder: "resnet18", inputChannels: 4),
                              flow: try OSVOS(encoder: "resnet18", inputChannels: 3), localisation: false)
    let viaName = try ModelZoo.make("maskrnn_resnet18", classes: 1)
    XCTAssertEqual(Set(try network.stateDict().map(\.0)), Set(try viaName.stateDict().map(\.0)).filter { !$0.hasPrefix("localiser.") })
  }
}
