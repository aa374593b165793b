import ArgumentParser
import Foundation
import SegKitData

extension DatasetFormat: ExpressibleByArgument {}

struct DataCheck: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "check",
    abstract: "Validate a dataset split and show its size, image sizes and class frequencies.",
    discussion: """
      Decodes every image and label of the split and reports, each with the file's name: \
      missing images or labels, unreadable or truncated files, labels whose size differs \
      from their image, and label values outside the classes that are not void (255). \
      Exits with status 1 when a problem is found. Formats: \
      \(DatasetFormat.allCases.map(\.rawValue).joined(separator: ", ")).
      """
  )

  @Argument(help: "The dataset's root folder.")
  var root: String

  @Option(help: "Dataset layout.")
  var format: DatasetFormat

  @Option(help: "Split to check (default: train; train_aug for voc_aug; every image for folder).")
  var split: String?

  @Option(help: "voc_aug: the SBD folder (benchmark_RELEASE or its dataset/), when not under ROOT.")
  var sbd: String?

  @Option(help: "DAVIS frame size: 480p or full.")
  var resolution: String = "480p"

  @Option(help: "Also write the report as JSON to this file.")
  var json: String?

  func run() throws {
    let rootURL = URL(fileURLWithPath: root)
    guard let resolution = DAVISResolution(rawValue: resolution) else {
      throw ValidationError("--resolution must be 480p or full, not '\(self.resolution)'")
    }
    let dataset: SegmentationDataset
    switch format {
    case .vocAug where sbd != nil:
      dataset = try .vocAug(root: rootURL, split: split ?? format.defaultSplit, sbd: URL(fileURLWithPath: sbd!))
    case .davis2016:
      dataset = try VideoDataset.davis2016(root: rootURL, split: split ?? format.defaultSplit, resolution: resolution).frames
    case .davis2017:
      dataset = try VideoDataset.davis2017(root: rootURL, split: split ?? format.defaultSplit, resolution: resolution).frames
    default:
      dataset = try .open(format, root: rootURL, split: split)
    }
    let report = dataset.check()
    print(report.text)
    if let json {
      do { try AtomicFile.write(report.json(), to: URL(fileURLWithPath: json)) } catch {
        throw ValidationError("\(json): cannot write the report (\(error.localizedDescription))")
      }
    }
    if !report.problems.isEmpty { throw ExitCode(1) }
  }
}
