import Foundation
import SegKitModels

extension XMem {
  /// XMem from a weight file in XMem's key layout: its released `XMem.pth` (a raw state
  /// dict, read without running any pickled code) or a safetensors file with the same
  /// keys. Errors name the file.
  public static func load(contentsOf url: URL, device: Device = .cpu) throws -> XMem {
    let stateDict = try StateDict.load(contentsOf: url)
    var entries: [String: Tensor] = [:]
    for (name, tensor) in stateDict { entries[name] = tensor }
    do {
      return try XMem(stateDict: entries).to(device: device).eval()
    } catch let error as ModelError {
      throw InferenceError("\(url.path): \(error.message)")
    } catch let error as StateDictError {
      throw InferenceError("\(url.path): not XMem's layout: \(error)")
    }
  }
}

/// Writes each frame's object probabilities as XMem's `--save_scores` keeps its scores:
/// `<folder>/<sequence>/<frame>.safetensors`, one float32 tensor `probabilities`
/// [objects, H, W] (background left out), each file written whole then renamed.
public struct ProbabilityWriter: Sendable {
  public let folder: URL

  public init(folder: URL) { self.folder = folder }

  public func write(_ probabilities: Tensor, sequence: String, frame: String) throws {
    let directory = folder.appendingPathComponent(sequence)
    do {
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
      throw InferenceError("\(directory.path): cannot create the folder (\(error.localizedDescription))")
    }
    let tensor = try probabilities.to(dtype: .float32, device: .cpu).contiguous()
    try StateDict([("probabilities", tensor)]).save(to: directory.appendingPathComponent(frame + ".safetensors"))
  }
}

extension XMemSettings {
  /// The settings a memory run stored in the model.json beside `weights` (its
  /// model.safetensors), nil when there is no model.json there or it holds none.
  public static func ofRun(besideWeights weights: URL) throws -> XMemSettings? {
    let run = RunLayout(weights.deletingLastPathComponent())
    guard FileManager.default.fileExists(atPath: run.manifestURL.path) else { return nil }
    do { return try run.manifest().inference?.memory } catch {
      throw InferenceError("\(weights.path): the run's \(run.manifestURL.lastPathComponent) cannot be read: \(error)")
    }
  }
}

/// XMem segmenters sharing one loaded network, prepared for fast inference: a fresh
/// memory per sequence, each frame's probabilities kept when `probabilities` is set.
public struct XMemSegmenters {
  public let network: XMem
  public let settings: XMemSettings
  public let device: Device
  public let probabilities: ProbabilityWriter?
  public let precision: InferencePrecision

  /// Loads `weights` (see `XMem.load(contentsOf:device:)`) and checks the settings;
  /// `precision` as `XMemSegmenter` takes it.
  public init(weights: URL, settings: XMemSettings, device: Device = .cpu, probabilities: ProbabilityWriter? = nil,
              precision: InferencePrecision = .fp32) throws {
    network = try XMem.load(contentsOf: weights, device: device)
    try network.optimizeForInference()
    self.settings = try settings.validated()
    (self.device, self.probabilities, self.precision) = (device, probabilities, precision)
    _ = try XMemSegmenter(network: network, settings: settings, device: device, precision: precision)  // refused precisions, said now
  }

  /// A segmenter for `sequence`, whose frame `i` is named `frameNames[i]` in the
  /// probability files (six-digit indices past the list's end).
  public func make(sequence: String, frameNames: [String] = []) throws -> XMemSegmenter {
    let segmenter = try XMemSegmenter(network: network, settings: settings, device: device, precision: precision)
    if let probabilities {
      segmenter.didSegment = { index, tensor in
        let name = index < frameNames.count ? frameNames[index] : String(format: "%06d", index)
        try probabilities.write(tensor, sequence: sequence, frame: name)
      }
    }
    return segmenter
  }
}
