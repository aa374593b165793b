import ArgumentParser
import Foundation
import SegKitModels

struct Models: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "List the model zoo: every model name with its parameter count and GFLOPs at 512×512.",
    discussion: """
      Names are DECODER_ENCODER (decoders \(ModelZoo.decoders.joined(separator: ", "))) over every \
      registered encoder, plus torchvision's segmentation models under their own names. Counts are \
      for 21 classes and the default configuration (torchvision's models with their auxiliary head). \
      GFLOPs are counted from the layers that run on a 3×512×512 image, a multiply-add being 2 FLOPs.
      """
  )

  @Flag(help: "Print JSON instead of a table.")
  var json = false

  @Option(help: "Only names containing this text.")
  var filter: String?

  func run() throws {
    let names = ModelZoo.names.filter { filter.map($0.contains) ?? true }
    let rows = try ModelZoo.catalog(names)
    if json {
      let objects = rows.map { ["name": $0.name, "parameters": $0.parameters, "flops": $0.flops] as [String: Any] }
      let data = try JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys])
      print(String(decoding: data, as: UTF8.self))
      return
    }
    let width = max(5, rows.map(\.name.count).max() ?? 0)
    print("model".padding(toLength: width, withPad: " ", startingAt: 0) + "  " + "parameters".leftPadded(12)
      + "GFLOPs@512".leftPadded(12))
    for row in rows {
      let millions = String(format: "%.2fM", Double(row.parameters) / 1e6)
      let gflops = String(format: "%.1f", Double(row.flops) / 1e9)
      print(row.name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + millions.leftPadded(12)
        + gflops.leftPadded(12))
    }
  }
}

extension String {
  func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
