import Foundation

/// Semi-supervised video object segmentation of DAVIS sequences with one-shot
/// fine-tuning: for each sequence, each object of its first annotation gets its own
/// fine-tuned copy of the parent; every later frame takes, per pixel, the object of
/// highest probability where that is above ½ (else background). Writes the DAVIS
/// results layout: `<out>/<sequence>/<frame>.png`, 0/255 for DAVIS 2016, palette
/// object ids for 2017, named like the annotations.
public struct DAVISSegmentation {
  public let modelName: String
  public let parent: StateDict
  public let settings: FineTuningSettings

  public init(modelName: String, parent: StateDict, settings: FineTuningSettings) {
    self.modelName = modelName
    self.parent = parent
    self.settings = settings
  }

  /// What one sequence cost.
  public struct Timing: Codable, Sendable {
    public let sequence: String
    public let objects: Int
    public let fineTuningSeconds: Double
    public let framesPerSecond: Double
  }

  /// Whether every frame of `sequence` already has a result in `folder`.
  public static func isFinished(_ sequence: VideoSequence, in folder: URL) -> Bool {
    sequence.frames.allSatisfy { frame in
      guard let name = frame.label?.url.lastPathComponent else { return false }
      return FileManager.default.fileExists(atPath: folder.appendingPathComponent(sequence.name).appendingPathComponent(name).path)
    }
  }

  /// Segments one sequence into `folder`/<sequence>/ (each file written whole, then renamed).
  public func segment(_ sequence: VideoSequence, singleObject: Bool, into folder: URL) throws -> Timing {
    guard let firstAnnotation = sequence.frames.first?.label?.url else {
      throw TrainingError("\(sequence.name): no first-frame annotation to start from")
    }
    let annotation = try ImageIO.readLabel(firstAnnotation)
    let objects = singleObject ? [1] : Array(Set(annotation.pixels.filter { $0 != 0 && $0 != voidLabel })).map(Int.init).sorted()
    guard !objects.isEmpty else { throw TrainingError("\(firstAnnotation.path): the first annotation holds no object") }
    let frames = try sequence.frames.map { try ImageIO.read($0.image) }
    let start = Date()
    var segmenters: [(id: Int, segmenter: OneShotSegmenter)] = []
    for id in objects {
      var mask = annotation
      for i in mask.pixels.indices {
        mask.pixels[i] = singleObject ? (mask.pixels[i] != 0 ? 1 : 0) : (Int(mask.pixels[i]) == id ? 1 : 0)
      }
      let segmenter = try OneShotSegmenter(modelName: modelName, parent: parent, settings: settings)
      _ = try segmenter.start(firstFrame: frames[0], mask: mask)
      segmenters.append((id, segmenter))
    }
    let tuned = Date()
    let output = folder.appendingPathComponent(sequence.name)
    do {
      try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
    } catch {
      throw TrainingError("\(output.path): cannot create the folder (\(error.localizedDescription))")
    }
    for (index, frame) in sequence.frames.enumerated() {
      guard let name = frame.label?.url.lastPathComponent else { continue }
      var labels = index == 0 ? annotation : try merge(segmenters, frames[index])
      for i in labels.pixels.indices where labels.pixels[i] == voidLabel { labels.pixels[i] = 0 }  // void is no object
      if singleObject { for i in labels.pixels.indices { labels.pixels[i] = labels.pixels[i] != 0 ? 255 : 0 } }
      try ImageIO.writePNG(labels, to: output.appendingPathComponent(name), palette: singleObject ? nil : .pascal)
    }
    let segmenting = Date().timeIntervalSince(tuned)
    return Timing(sequence: sequence.name, objects: objects.count, fineTuningSeconds: tuned.timeIntervalSince(start),
                  framesPerSecond: Double(max(0, frames.count - 1)) / max(segmenting, 1e-9))
  }

  /// Per pixel, the object of highest probability above ½, else background (0).
  private func merge(_ segmenters: [(id: Int, segmenter: OneShotSegmenter)], _ frame: Image) throws -> Image {
    let probabilities = try Tensor.stack(segmenters.map { try $0.segmenter.probabilities(frame) })  // [K, H, W]
    let (best, index) = try (probabilities.max(dim: 0).values, probabilities.argmax(dim: 0))
    let ids = try Tensor(segmenters.map { Float($0.id) }, shape: [segmenters.count])
    let labels = try ids.indexSelect(dim: 0, index: index.reshape([-1])).reshape(index.shape) * (best .> 0.5).to(.float32)
    return try Image(tensor: labels.unsqueeze(0) / 255)
  }
}
