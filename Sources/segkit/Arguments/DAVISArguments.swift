import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor

/// Which DAVIS split: root, year, split and frame size.
struct DAVISArguments: ParsableArguments {
  @Option(help: "The DAVIS root folder.")
  var davis: String?

  @Option(help: "2016 or 2017.")
  var year: Int?

  @Option(help: "The split.")
  var split = "val"

  @Option(help: "DAVIS frame size: 480p or full.")
  var resolution = "480p"

  func validate() throws {
    if let year, year != 2016 && year != 2017 { throw ValidationError("--year must be 2016 or 2017, got \(year)") }
    if davis != nil && year == nil { throw ValidationError("--davis needs --year 2016 or 2017") }
    guard DAVISResolution(rawValue: resolution) != nil else {
      throw ValidationError("--resolution must be 480p or full, not '\(resolution)'")
    }
  }

  /// The split's sequences, or those of the comma-separated `names` (checked).
  func sequences(_ names: String?) throws -> [VideoSequence] {
    let dataset = try self.dataset()
    guard let names else { return dataset.sequences }
    let chosen = names.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    if let unknown = chosen.first(where: { name in !dataset.sequences.contains { $0.name == name } }) {
      throw ValidationError("--sequences: '\(unknown)' is not a sequence of the DAVIS \(year ?? 0) \(split) split")
    }
    return dataset.sequences.filter { chosen.contains($0.name) }
  }

  func dataset() throws -> VideoDataset {
    guard let davis, let year else { throw ValidationError("--davis ROOT and --year 2016|2017 are required") }
    let root = URL(fileURLWithPath: davis), size = DAVISResolution(rawValue: resolution) ?? .p480
    return year == 2016
      ? try VideoDataset.davis2016(root: root, split: split, resolution: size)
      : try VideoDataset.davis2017(root: root, split: split, resolution: size)
  }
}

/// The model name and weight file of `--parent`: a run folder (its model and latest
/// checkpoint) or a weight file of `model`.
func parentWeights(_ parent: String, model: String) throws -> (String, URL) {
  let parentURL = URL(fileURLWithPath: parent)
  var isDirectory: ObjCBool = false
  guard FileManager.default.fileExists(atPath: parentURL.path, isDirectory: &isDirectory) else {
    throw ValidationError("--parent \(parent): no such file or folder")
  }
  guard isDirectory.boolValue else { return (model, parentURL) }
  let run = try RunLayout.existing(parentURL)
  return (try run.manifest().model, try run.latestCheckpointURL { warn($0) })
}

/// How a MaskRNN parent computes its flows: as its run was trained (flow method, DIS
/// preset, flow weights; the exact flows under `davis` for a run trained on them), or DIS
/// with the fast preset for a bare weight file.
func maskRNNFlow(parent: String, davis: String?, device: Device) throws -> MaskRNNFlowSource {
  let url = URL(fileURLWithPath: parent)
  var isDirectory: ObjCBool = false
  guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else { return .computed(.dis(.fast)) }
  let defaults = try inferenceDefaults(of: RunLayout.existing(url))
  if defaults.flowMethod == "exact" {
    guard let davis else {
      throw CommandError("--parent \(parent) was trained on the synthetic generator's exact flows: give the synthetic DAVIS root (--davis)")
    }
    return .exact(root: URL(fileURLWithPath: davis))
  }
  do {
    return .computed(try NetworkFlow.method(defaults.flowMethod ?? "dis", preset: defaults.flowPreset, weights: defaults.flowWeights, device: device))
  } catch let error as InferenceError {
    throw CommandError("--parent \(parent): \(error.message)")
  }
}
