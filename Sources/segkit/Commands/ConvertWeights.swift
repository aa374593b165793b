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

  @Flag(help: "Replace OUTPUT if it exists (never the input itself).")
  var force = false

  func run() throws {
    let (inputURL, outputURL) = (URL(fileURLWithPath: input), URL(fileURLWithPath: output))
    if FileManager.default.fileExists(atPath: outputURL.path) {
      if sameFile(inputURL, outputURL) {
        throw ValidationError("\(output) is the input itself: write the safetensors file under another name")
      }
      guard force else { throw ValidationError("\(output) exists: choose another name, or --force to replace it") }
    }
    let stateDict = try StateDict.load(contentsOf: inputURL)
    try stateDict.save(to: outputURL)
    print("wrote \(stateDict.count) tensors to \(output)")
  }
}

/// Whether two paths name one file (through links too): same device and inode.
func sameFile(_ a: URL, _ b: URL) -> Bool {
  var first = stat(), second = stat()
  guard stat(a.path, &first) == 0, stat(b.path, &second) == 0 else { return false }
  return first.st_dev == second.st_dev && first.st_ino == second.st_ino
}
