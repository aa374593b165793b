import ArgumentParser
import SegKitTensor

@main
struct SegKit: ParsableCommand {
  static let version = "0.1.0"

  static let configuration = CommandConfiguration(
    commandName: "segkit",
    abstract: "Image and video segmentation on libtorch.",
    version: version,
    subcommands: [
      Info.self, Models.self, Predict.self, ConvertWeights.self, DataCommand.self, Train.self, Eval.self, VOSCommand.self, DVSCommand.self,
      FlowCommand.self, Export.self, Serve.self,
    ]
  )

  static func main() {
    CommandInputs.track()  // no command writes over a file it reads (AtomicFile refuses)
    main(nil)
  }
}

struct Info: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Show the SegKit and libtorch versions, devices and threads.")

  func run() throws {
    print("SegKit \(SegKit.version)")
    print("libtorch \(Torch.version)")
    print("devices: \(Device.available.map(\.description).joined(separator: ", "))")
    print("threads: \(Torch.threads)")
  }
}
