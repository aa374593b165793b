import ArgumentParser
import Foundation
import SegKitData

/// `segkit data …`: dataset tools. Add a subcommand by listing its type below.
struct DataCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "data",
    abstract: "Dataset tools: synthetic datasets, checks.",
    subcommands: [DataSynth.self, DataCheck.self]
  )
}
