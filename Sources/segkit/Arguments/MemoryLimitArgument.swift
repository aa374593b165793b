import ArgumentParser
import SegKitTensor

/// `--memory-limit`: the cap on what a command's inputs may make it allocate.
struct MemoryLimitArgument: ParsableArguments {
  @Option(help: ArgumentHelp(
    "The most memory the inputs may take, e.g. 8G (K, M, G, T are powers of 1024); default: what the process can get (available memory, container and ulimit -v limits).",
    valueName: "size"))
  var memoryLimit: String?

  /// Sets `MemoryBudget.limit` from the option.
  func apply() throws {
    guard let memoryLimit else { return }
    guard let bytes = MemoryBudget.parse(memoryLimit) else {
      throw ValidationError("--memory-limit must be a size such as 512M or 8G, got '\(memoryLimit)'")
    }
    MemoryBudget.limit = bytes
  }
}
