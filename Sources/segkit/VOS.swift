import ArgumentParser
import Foundation
import SegKitData
import SegKitInference

/// `segkit vos …`: semi-supervised video object segmentation.
struct VOSCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vos",
    abstract: "Video object segmentation: DAVIS evaluation.",
    subcommands: [VOSEval.self]
  )
}

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

  @Option(help: "The DAVIS root folder.")
  var davis: String

  @Option(help: "2016 or 2017.")
  var year: Int

  @Option(help: "The split to score.")
  var split = "val"

  @Option(help: "DAVIS frame size: 480p or full.")
  var resolution = "480p"

  @Option(help: "Also write the scores as JSON: {\"global\": {…}, \"objects\": [{\"sequence\", \"object\", \"J-Mean\", …}]}.")
  var json: String?

  func run() throws {
    guard year == 2016 || year == 2017 else { throw ValidationError("--year must be 2016 or 2017, got \(year)") }
    guard let resolution = DAVISResolution(rawValue: resolution) else {
      throw ValidationError("--resolution must be 480p or full, not '\(self.resolution)'")
    }
    let resultsURL = URL(fileURLWithPath: results)
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: resultsURL.path, isDirectory: &isDirectory), isDirectory.boolValue else {
      throw ValidationError("--results \(results): no such folder")
    }
    let jsonURL = try json.map { try writableFile($0, option: "--json") }
    let root = URL(fileURLWithPath: davis)
    let dataset = year == 2016
      ? try VideoDataset.davis2016(root: root, split: split, resolution: resolution)
      : try VideoDataset.davis2017(root: root, split: split, resolution: resolution)
    let start = Date()
    let report = try DAVISEvaluation.run(results: resultsURL, dataset: dataset)
    let seconds = Date().timeIntervalSince(start)

    try write(report.globalCSV, to: resultsURL.appendingPathComponent("global_results-\(split).csv"))
    try write(report.perSequenceCSV, to: resultsURL.appendingPathComponent("per-sequence_results-\(split).csv"))
    if let jsonURL {
      do { try report.json().write(to: jsonURL, options: .atomic) } catch {
        throw CommandError("\(jsonURL.path): cannot be written (\(error.localizedDescription))")
      }
    }
    print("DAVIS \(year) \(split): \(dataset.sequences.count) sequences, \(report.objects.count) objects, "
      + String(format: "%.1f s", seconds))
    print(report.global.map { "\($0.name) " + String(format: "%.4f", $0.value) }.joined(separator: "  "))
    print("J&F: " + String(format: "%.4f", report.global[0].value))
  }

  private func write(_ text: String, to url: URL) throws {
    do { try Data(text.utf8).write(to: url, options: .atomic) } catch {
      throw CommandError("\(url.path): cannot be written (\(error.localizedDescription))")
    }
  }
}
