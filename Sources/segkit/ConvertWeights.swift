import ArgumentParser
import Foundation
import SegKitTensor

struct ConvertWeights: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "convert-weights",
    abstract: "Convert a PyTorch state dict (.pth, .pt) to a safetensors file.",
    discussion: """
      Reads torch.save files in the zip and the legacy format without Python and without \
      running any code from them. Names, dtypes, shapes and values are kept exactly. The \
      output appears complete or not at all.
      """
  )

  @Argument(help: "The checkpoint to read (a state dict, or a checkpoint holding one under 'state_dict' or 'model').")
  var input: String

  @Argument(help: "The safetensors file to write.")
  var output: String

  func run() throws {
    let stateDict = try StateDict.load(contentsOf: URL(fileURLWithPath: input))
    try stateDict.save(to: URL(fileURLWithPath: output))
    print("wrote \(stateDict.count) tensors to \(output)")
  }
}
