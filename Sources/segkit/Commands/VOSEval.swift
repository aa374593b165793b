import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor

struct VOSEval: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Score a results folder on DAVIS 2016 or 2017 as davis2017-evaluation does: J and F mean, recall, decay; J&F.",
    discussion: """
      RESULTS holds one folder per sequence with a PNG per annotated frame, named like the \
      annotations: palette indices of object ids for 2017, 0/255 (any non-zero) for 2016. \
      Every frame but the first and the last counts; each object of each sequence weighs the \
      same; F's boundary tolerance is 0.008 of the image diagonal; void (255) in the 2017 \
      annotations is background. Writes global_results-SPLIT.csv and \
      per-sequence_results-SPLIT.csv (davis2017-evaluation's columns, 3 decimals) into RESULTS, \
      and with --json the unrounded values. Sequences of 256 frames or more get a correct \
      decay (the official code's 8-bit frame index wraps there).
      """)

  @Option(help: "The results folder: <sequence>/<frame>.png.")
  var results: String

  @OptionGroup var davis: DAVISArguments

  @Option(help: "Also write the scores as JSON: {\"global\": {…}, \"objects\": [{\"sequence\", \"object\", \"J-Mean\", …}]}.")
  var json: String?

  func validate() throws {
    guard davis.davis != nil else { throw ValidationError("--davis ROOT and --year 2016|2017 are required") }
  }

  func run() throws {
    let resultsURL = URL(fileURLWithPath: results)
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: resultsURL.path, isDirectory: &isDirectory), isDirectory.boolValue else {
      throw ValidationError("--results \(results): no such folder")
    }
    let jsonURL = try json.map { try writableFile($0, option: "--json") }
    let dataset = try davis.dataset()
    let start = Date()
    let report = try DAVISEvaluation.run(results: resultsURL, dataset: dataset)
    let seconds = Date().timeIntervalSince(start)

    try write(Data(report.globalCSV.utf8), to: resultsURL.appendingPathComponent("global_results-\(davis.split).csv"))
    try write(Data(report.perSequenceCSV.utf8), to: resultsURL.appendingPathComponent("per-sequence_results-\(davis.split).csv"))
    if let jsonURL { try write(try report.json(), to: jsonURL) }
    print("DAVIS \(davis.year ?? 0) \(davis.split): \(dataset.sequences.count) sequences, \(report.objects.count) objects, "
      + String(format: "%.1f s", seconds))
    print(report.global.map { "\($0.name) " + String(format: "%.4f", $0.value) }.joined(separator: "  "))
    print("J&F: " + String(format: "%.4f", report.global[0].value))
  }
}
