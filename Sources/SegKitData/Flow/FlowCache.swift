import Foundation

/// The flows of a video split's frames, computed once and kept on disk: for frame t
/// of a sequence, the flow from t to t−1 (`backward`: it carries frame t−1's mask to
/// frame t, see `FlowWarp`) and from t to t+1 (`forward`); none where that
/// neighbour does not exist. The folder records how its flows were made
/// (`settings.json`) and refuses to serve a run that asks for other settings.
///
///     <folder>/settings.json
///     <folder>/<sequence>/<frame>.backward.flo   flow t → t−1
///     <folder>/<sequence>/<frame>.forward.flo    flow t → t+1
public final class FlowCache: FrameFlowSource {
  public struct Settings: Codable, Equatable, Sendable {
    public var method: String
    /// DIS's preset; nil for a network.
    public var preset: String?
    /// A flow network's weights, by the FNV-1a hash of the file; nil for DIS.
    public var weights: String?
    /// DIS on frames enlarged this many times; nil for 1 (so caches from before it match).
    public var upscale: Int?

    public init(method: String, preset: String? = nil, weights: String? = nil, upscale: Int? = nil) {
      (self.method, self.preset, self.weights, self.upscale) = (method, preset, weights, upscale)
    }

    public var description: String {
      method + (preset.map { " (preset \($0))" } ?? "") + (upscale.map { " (frames ×\($0))" } ?? "")
        + (weights.map { " (weights \($0))" } ?? "")
    }
  }

  public let folder: URL
  public let settings: Settings
  let method: FlowMethod

  /// The cache beside a dataset: `<root>/FlowCache`.
  public static func defaultFolder(forDatasetAt root: URL) -> URL { root.appendingPathComponent("FlowCache") }

  /// Opens (or starts) the cache in `folder` for DIS flow with `preset`.
  public convenience init(folder: URL, preset: OpticalFlow.Preset = .fast) throws {
    try self.init(folder: folder, method: .dis(preset))
  }

  /// Opens (or starts) the cache in `folder` for flows made by `method`.
  public init(folder: URL, method: FlowMethod) throws {
    self.folder = folder
    self.method = method
    settings = method.settings
    let record = folder.appendingPathComponent("settings.json")
    if FileManager.default.fileExists(atPath: record.path) {
      let stored: Settings
      do { stored = try JSONDecoder().decode(Settings.self, from: Data(contentsOf: record)) } catch {
        throw DataError("\(record.path): not a flow cache's settings (\(error.localizedDescription)); delete \(folder.path) to start afresh")
      }
      guard stored == settings else {
        throw DataError("\(folder.path): a flow cache made with \(stored.description), but this run asks for \(settings.description); delete the folder or give another cache folder")
      }
    } else {
      do {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(encoder.encode(settings), to: record)
      } catch {
        throw DataError("\(folder.path): cannot create the flow cache (\(error.localizedDescription))")
      }
    }
  }

  /// Frame `index` of `sequence`'s flows to its neighbours, computed and stored if missing.
  public func flows(of sequence: VideoSequence, frame index: Int) throws -> (backward: FlowField?, forward: FlowField?) {
    guard sequence.frames.indices.contains(index) else {
      throw DataError("\(sequence.name) has \(sequence.frames.count) frames, no frame \(index)")
    }
    var frames: [Int: Image] = [:]
    func frame(_ i: Int) throws -> Image {
      if let image = frames[i] { return image }
      let image = try ImageIO.read(sequence.frames[i].image)
      frames[i] = image
      return image
    }
    func flow(to neighbour: Int, _ direction: String) throws -> FlowField? {
      guard sequence.frames.indices.contains(neighbour) else { return nil }
      let url = file(sequence, index, direction)
      if FileManager.default.fileExists(atPath: url.path) {
        let cached = try FlowFile.read(url)
        let size = try ImageIO.size(of: sequence.frames[index].image)
        guard cached.width == size.width, cached.height == size.height else {
          throw DataError("\(url.path): a \(cached.width)×\(cached.height) flow for a \(size.width)×\(size.height) frame; the cache is stale: delete \(folder.path)")
        }
        return cached
      }
      let computed = try method.compute(try frame(index), try frame(neighbour))
      do {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      } catch {
        throw DataError("\(url.deletingLastPathComponent().path): cannot create the folder (\(error.localizedDescription))")
      }
      try FlowFile.write(computed, to: url)
      return computed
    }
    return (try flow(to: index - 1, "backward"), try flow(to: index + 1, "forward"))
  }

  /// Computes every missing flow of `sequences`, `workers` frames at a time; returns how many were computed.
  @discardableResult
  public func fill(_ sequences: [VideoSequence], workers: Int = 2) throws -> Int {
    let jobs = sequences.flatMap { sequence in sequence.frames.indices.map { (sequence, $0) } }
    let missing = jobs.filter { sequence, index in
      [(index - 1, "backward"), (index + 1, "forward")].contains { neighbour, direction in
        sequence.frames.indices.contains(neighbour)
          && !FileManager.default.fileExists(atPath: file(sequence, index, direction).path)
      }
    }
    let failures = FailureBox()
    let workers = method.parallel ? workers : 1
    DispatchQueue.concurrentPerform(iterations: max(1, workers)) { worker in
      for job in stride(from: worker, to: missing.count, by: max(1, workers)) where !failures.hasFailed {
        do { _ = try flows(of: missing[job].0, frame: missing[job].1) } catch { failures.record(error) }
      }
    }
    if let error = failures.first { throw error }
    return missing.count
  }

  public func prepare(_ sequences: [VideoSequence]) throws { try fill(sequences) }

  func file(_ sequence: VideoSequence, _ index: Int, _ direction: String) -> URL {
    let stem = sequence.frames[index].image.deletingPathExtension().lastPathComponent
    return folder.appendingPathComponent(sequence.name).appendingPathComponent("\(stem).\(direction).flo")
  }
}

/// How a flow cache computes its flows, and what it records of that: DIS with a preset,
/// or a flow network (`NetworkFlow.method`) with its weights.
public struct FlowMethod: @unchecked Sendable {
  public let settings: FlowCache.Settings
  /// The flow from the first frame to the second.
  public let compute: (Image, Image) throws -> FlowField
  /// Whether frames may be computed on several threads at once (a network runs one at a time).
  public let parallel: Bool

  public init(settings: FlowCache.Settings, parallel: Bool, compute: @escaping (Image, Image) throws -> FlowField) {
    (self.settings, self.parallel, self.compute) = (settings, parallel, compute)
  }

  public static func dis(_ preset: OpticalFlow.Preset, upscale: Int = 1) -> FlowMethod {
    FlowMethod(settings: FlowCache.Settings(method: "dis", preset: "\(preset)", upscale: upscale == 1 ? nil : upscale), parallel: true) {
      try OpticalFlow.dis(from: $0, to: $1, preset: preset, upscale: upscale)
    }
  }

  /// The FNV-1a hash of a file's bytes, in hex: which weights made a cache's flows.
  public static func fingerprint(of url: URL) throws -> String {
    let data: Data
    do { data = try Data(contentsOf: url) } catch {
      throw DataError("\(url.path): cannot be read (\(error.localizedDescription))")
    }
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in data { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return String(format: "%016llx", hash)
  }
}

/// The first error of concurrent work.
private final class FailureBox: @unchecked Sendable {
  private let lock = NSLock()
  private var error: Error?

  var hasFailed: Bool { lock.withLock { error != nil } }
  var first: Error? { lock.withLock { error } }
  func record(_ error: Error) { lock.withLock { if self.error == nil { self.error = error } } }
}
